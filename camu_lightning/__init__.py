"""camu-lightning: deep machine unlearning with PyTorch Lightning (CaMU and its baselines).

from camu_lightning import UnlearningDataModule, unlearn
from camu_lightning.methods import CaMU
"""

__version__ = "0.1.0"

from camu_lightning.data import UnlearningDataModule  # noqa: E402 -- modules below read __version__
from camu_lightning.models import WithEmbedding  # noqa: E402
from camu_lightning.unlearning import Unlearning, unlearn  # noqa: E402

__all__ = ["UnlearningDataModule", "Unlearning", "WithEmbedding", "__version__", "unlearn"]
