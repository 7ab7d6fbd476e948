"""camu-lightning: deep machine unlearning with PyTorch Lightning (CaMU and its baselines).

from camu_lightning import UnlearningDataModule, unlearn
from camu_lightning.methods import CaMU

The names below are imported on first use, so `camu --help` and `camu report` start without torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "UnlearningDataModule": "camu_lightning.data",
    "WithEmbedding": "camu_lightning.models",
    "run_callbacks": "camu_lightning.run",
    "unlearn": "camu_lightning.run",
}
__all__ = ["UnlearningDataModule", "WithEmbedding", "__version__", "run_callbacks", "unlearn"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'camu_lightning' has no attribute '{name}'")
