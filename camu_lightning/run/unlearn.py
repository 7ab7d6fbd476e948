"""`unlearn`: one unlearning run from Python, the run callbacks composed around `validate`, `fit` and `test`.

    from camu_lightning import unlearn
    results = unlearn(method, datamodule, trainer, retrain=retrain_results)

The same callbacks make `camu fit`; a user's own `trainer.validate / fit / test(method, datamodule=data)` with
`run_callbacks(...)` in its Trainer gives the same numbers (tests/test_api.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from camu_lightning.data import UnlearningDataModule
from camu_lightning.methods import UnlearningMethod
from camu_lightning.original import OriginalRecipe
from camu_lightning.run.clock import UnlearningClock
from camu_lightning.run.find import find_callback
from camu_lightning.run.original_evaluation import OriginalEvaluation
from camu_lightning.run.results_writer import RunResults
from camu_lightning.run.run_folder import RecordUnfinishedRun
from camu_lightning.run.starting_point import StartingPoint
from camu_lightning.run.streams import ServeStreams
from camu_lightning.utils.terminal import DropNoise, console

LIGHTNING_LOGS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def run_callbacks(
    original: OriginalRecipe | None = None,
    cache_dir: str | Path | None = None,
    retrain: dict[str, Any] | str | Path | None = None,
    results_dir: str | Path | None = None,
    stronger_attacks: bool = True,
    relearn_epochs: int = 0,
    network: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    labels: dict[str, Any] | None = None,
    verbose: bool = True,
) -> list[L.Callback]:
    """The callbacks of an unlearning run, for any Trainer (see `StartingPoint` and `RunResults` for the settings);
    with `results_dir`, an interrupted or diverged run leaves its status there."""
    given = retrain if isinstance(retrain, dict) else None
    callbacks = [
        ServeStreams(),
        StartingPoint(original, cache_dir, network, given),
        UnlearningClock(),
        OriginalEvaluation(),
        RunResults(retrain, results_dir, stronger_attacks, relearn_epochs, config, labels, verbose),
    ]
    return callbacks + ([RecordUnfinishedRun(results_dir)] if results_dir is not None else [])


def evaluate_original(trainer: L.Trainer, method: UnlearningMethod, datamodule: UnlearningDataModule) -> None:
    """Before fit: check the run and load its starting point, then evaluate that model (or take its evaluation
    from the cache)."""
    start = find_callback(trainer, StartingPoint)
    start.prepare(trainer, method, datamodule)
    evaluation = find_callback(trainer, OriginalEvaluation)
    if not evaluation.wanted(trainer, method):
        return
    one_device = trainer.num_devices * trainer.num_nodes == 1  # ranks validate together: none waits on a lock
    with start.cache.locked("evaluation", evaluation.key(trainer, method)) if one_device else nullcontext():
        if not evaluation.load_cached(trainer, method):  # another run may have stored it while this one waited
            trainer.validate(method, datamodule=datamodule, verbose=False)


def announce_split(datamodule: UnlearningDataModule) -> None:
    summary = ", ".join(f"{key} {value}" for key, value in datamodule.summary().items())
    console.print(f"split: {summary}", highlight=False)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's rank-zero lines that say nothing about the run (hardware census, tips, "fit stopped"), for its
    nested Trainers too, silenced while the run lasts."""
    noise = DropNoise()
    for name in LIGHTNING_LOGS:
        logging.getLogger(name).addFilter(noise)
    try:
        yield
    finally:
        for name in LIGHTNING_LOGS:
            logging.getLogger(name).removeFilter(noise)


def default_trainer(max_epochs: int) -> L.Trainer:
    """A Trainer for `unlearn` when none is given: the method's epochs, a rich progress bar, no checkpoints, logger
    or model summary."""
    return L.Trainer(
        max_epochs=max_epochs,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=False,
        callbacks=[RichProgressBar()],
    )


def unlearn(
    method: UnlearningMethod,
    datamodule: UnlearningDataModule,
    trainer: L.Trainer | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Unlearn the data module's forget set with the method and measure it: what `camu fit` reports.

    Args:
        method: an UnlearningMethod, e.g. `CaMU(network=your_trained_model, **data.links(CaMU))`.
        datamodule: the data and the forget request.
        trainer: a new Lightning Trainer for the unlearning (default: 1 epoch, progress bar, no logger); one that
            has trained already (the original's) is refused, since it would run no step.
        settings: `run_callbacks`' (retrain, cache_dir, results_dir, original, stronger_attacks, relearn_epochs,
            verbose).

    Returns:
        The results: `original_<metric>` (the model before unlearning), the unlearned model's metrics and attacks,
        `time_unlearn_s`, and with `retrain` the gaps to it (`gap_<metric>`, `avg_gap`, `rte`, `tow`).
    """
    with quiet_lightning():
        trainer = trainer or default_trainer(1)
        trainer.callbacks.extend(run_callbacks(**settings))
        if settings.get("verbose", True):
            announce_split(datamodule)
        evaluate_original(trainer, method, datamodule)
        trainer.fit(method, datamodule=datamodule)
        trainer.test(method, datamodule=datamodule, verbose=False)
    return find_callback(trainer, RunResults).results
