"""A run's folder (`lightning_logs/version_N/`): its own even when runs start together, and marked when a run
is interrupted or diverges, so that nothing reading the folders takes an unfinished run for a finished one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L

from camu_lightning.methods.base import DivergenceError
from camu_lightning.run.starting_point import StartingPoint
from camu_lightning.utils.files import write_json
from camu_lightning.utils.lightning_private import logger_version_chosen, set_logger_version


def claim_run_folder(trainer: L.Trainer) -> None:
    """Give the trainer's logger a version folder no other run has.

    Lightning's loggers pick `version_N` by listing the folder, so two runs started together pick the same N and
    write into one folder. Here the folder is created with mkdir, which exactly one process can do, moving to the
    next number when another run got there first. Only rank 0 claims; the other ranks follow its folder.
    """
    logger = trainer.logger
    if logger is None or not trainer.is_global_zero or logger_version_chosen(logger):
        return  # no logger, another rank, or a version the user chose
    root = Path(logger.root_dir)
    root.mkdir(parents=True, exist_ok=True)
    version = logger.version  # the number Lightning would pick
    while True:
        try:
            (root / f"version_{version}").mkdir()
            break
        except FileExistsError:
            version += 1
    set_logger_version(logger, version)


class RecordUnfinishedRun(L.Callback):
    """On Ctrl-C or divergence, write `results.json` with `"status": "interrupted"` or `"diverged"`, the epoch
    reached and the digests of what the run started from (as a finished run's: `original_digest`, `state_digest`)
    into the run's folder, where a finished run writes its results (the process then ends with exit status 1, or 2
    after divergence's one-line error). A diverged run is an outcome of its settings, not a fault: `camu
    bench` keeps it as the cell's row, so a grid does not rerun a seed that diverges every time.

    Args:
        folder: where the run writes its results (default: the logger's folder, else the Trainer's root).
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = folder

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt | DivergenceError) or not trainer.is_global_zero:
            return
        diverged = isinstance(exception, DivergenceError)
        folder = self.folder or (trainer.logger.log_dir if trainer.logger is not None else trainer.default_root_dir)
        write_json(
            Path(folder) / "results.json",
            {
                "status": "diverged" if diverged else "interrupted",
                "method": type(pl_module).__name__,
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                **({"error": str(exception)} if diverged else {}),
                **started_from(trainer),
            },
        )


def started_from(trainer: L.Trainer) -> dict[str, str]:
    """The digests of the weights the run started from, where its `StartingPoint` loaded them."""
    prepared = next((c.prepared for c in trainer.callbacks if isinstance(c, StartingPoint)), None) or {}
    return {key: value for key, value in prepared.items() if key in ("original_digest", "state_digest")}


@contextmanager
def released_on_error(trainer: L.Trainer) -> Iterator[None]:
    """A run refused before it trained anything (a bad setting, checkpoint or cache entry) leaves no empty
    `version_N/` behind: the folder it claimed is removed while it holds nothing."""
    try:
        yield
    except BaseException:
        folder = Path(trainer.log_dir) if trainer.logger is not None and trainer.is_global_zero else None
        if folder is not None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
