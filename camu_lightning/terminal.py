"""What `camu` shows on the terminal: the package's log through rich, library noise filtered, errors as one line."""

from __future__ import annotations

import logging
import traceback
import warnings
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

console = Console(stderr=True)

# Lightning's rank-zero lines that say nothing about this run: the hardware census and its adverts.
NOISE = ("💡 Tip", "GPU available:", "TPU available:", "HPU available:", "`Trainer.fit` stopped:")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(marker in record.getMessage() for marker in NOISE)


def set_up_terminal() -> None:
    """The package's log through rich at INFO; library messages that say nothing about this run silenced."""
    package_log = logging.getLogger("camu_lightning")
    if not package_log.handlers:
        package_log.addHandler(RichHandler(console=console, show_path=False))
        package_log.setLevel(logging.INFO)
    # Frozen copies (the original model, teachers) are in eval mode on purpose.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    # Nested trainers (the original, SISA's stages) have no validation loop, though data modules offer one.
    warnings.filterwarnings("ignore", message="You passed in a `val_dataloader` but have no `validation_step`")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Evaluation metrics are torchmetrics states synced across ranks, and the attack is logged from rank 0 alone.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('(val|test)/")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _DropNoise) for existing in logger.filters):
            logger.addFilter(_DropNoise())


def own_error(error: BaseException) -> BaseException:
    """The first error in the chain raised by this package: jsonargparse wraps an error raised while it
    instantiates a class in a multi-line report, with ours as its cause."""
    package = str(Path(__file__).parent)
    link: BaseException | None = error
    while link is not None:
        frames = traceback.extract_tb(link.__traceback__)
        if frames and frames[-1].filename.startswith(package):
            return link
        link = link.__cause__ or link.__context__
    return error
