"""The private Lightning attributes the suite touches, each wrapped once here (tests/test_lightning_private.py fails
when a Lightning release renames one): Lightning has no public way to do these four things."""

from __future__ import annotations

import copy

import lightning as L


def logger_version_chosen(logger: L.pytorch.loggers.Logger) -> bool:
    """Whether the logger's version was set by the user (TensorBoardLogger, CSVLogger keep it in `_version`; None
    until Lightning picks one by listing the folder)."""
    return getattr(logger, "_version", 0) is not None


def set_logger_version(logger: L.pytorch.loggers.Logger, version: int) -> None:
    """Fix the version folder the logger writes to (run_folder.py claims one no other run has)."""
    logger._version = version


def start_method(strategy: L.pytorch.strategies.Strategy) -> str:
    """How a DDP strategy starts its ranks: "popen" (each rank a process of its own), "spawn", "fork"..."""
    return getattr(strategy, "_start_method", "popen")


def batches_seen(trainer: L.Trainer) -> int:
    """Training batches run so far in this fit, over all epochs (what Lightning's own logging cadence counts)."""
    return trainer.fit_loop.total_batch_idx


def freeze_initial_hparams(module: L.LightningModule) -> None:
    """Make `hparams_initial` (what the loggers write to hparams.yaml) the module's current hyperparameters, after
    some were removed or rewritten."""
    module._hparams_initial = copy.deepcopy(module._hparams)
