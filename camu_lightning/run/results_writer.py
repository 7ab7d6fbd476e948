"""The run's results once the unlearned model is tested: metrics, attacks, times, where each starting point came
from, the gaps to a Retrain result, `results.json` and `split.json`; a Lightning callback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from camu_lightning.gaps import read_results, with_gaps
from camu_lightning.methods import UnlearningMethod
from camu_lightning.run.clock import UnlearningClock
from camu_lightning.run.find import find_callback
from camu_lightning.run.hparams_view import log_to_hparams_view
from camu_lightning.run.original_evaluation import OriginalEvaluation, logged
from camu_lightning.run.preparation import store_unlearned
from camu_lightning.run.relearn import relearn_curve
from camu_lightning.run.results import results_table, run_results
from camu_lightning.run.starting_point import StartingPoint, nested_trainer_settings
from camu_lightning.utils.files import write_json
from camu_lightning.utils.terminal import console


class RunResults(L.Callback):
    """When `trainer.test` ends: the results dict (`results`), on every rank (the others without gaps), and on
    rank 0 the cached Retrain, the relearning curve, the gaps, TensorBoard's HParams view and the files. Needs the
    run's `StartingPoint`, `UnlearningClock` and `OriginalEvaluation`.

    Args:
        retrain: a Retrain run's results (its `results.json`, or `unlearn`'s return value) on the same split, or a
            folder searched for the newest such `results.json`: the gaps to Retrain, RTE and ToW come from it.
        results_dir: where `results.json` and `split.json` are written; None: nothing is written.
        stronger_attacks: run the stronger membership-inference attacks at test.
        relearn_epochs: fine-tune the unlearned model on D_r this many epochs and report the relearning curve.
        config: the run's settings, stored in results.json.
        labels: more settings of the run for TensorBoard's HParams view (`camu fit`: the config's variant).
        verbose: print the results table.
    """

    def __init__(
        self,
        retrain: dict[str, Any] | str | Path | None = None,
        results_dir: str | Path | None = None,
        stronger_attacks: bool = True,
        relearn_epochs: int = 0,
        config: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
        verbose: bool = True,
    ) -> None:
        if relearn_epochs < 0:
            raise ValueError(f"relearn_epochs must be >= 0 (0: no relearning), got {relearn_epochs}")
        self.retrain, self.results_dir = retrain, results_dir
        self.stronger_attacks, self.relearn_epochs = stronger_attacks, relearn_epochs
        self.config, self.labels, self.verbose = config, labels or {}, verbose
        self.results: dict[str, Any] = {}

    def setup(self, trainer: L.Trainer, pl_module: UnlearningMethod, stage: str) -> None:
        if stage == "test":
            pl_module.stronger_attacks_at_test = self.stronger_attacks

    def teardown(self, trainer: L.Trainer, pl_module: UnlearningMethod, stage: str) -> None:
        # At teardown, not on_test_end: the test loop runs without gradients, and relearning trains.
        if stage != "test":
            return
        start = find_callback(trainer, StartingPoint)
        before = start.prepared | find_callback(trainer, OriginalEvaluation).results()
        clock = find_callback(trainer, UnlearningClock)
        times = {
            "time_unlearn_s": clock.elapsed,
            "time_unlearn_cpu_s": clock.cpu_elapsed,
            "unlearn_threads": torch.get_num_threads(),
            "unlearn_device": trainer.strategy.root_device.type,
        }
        results = run_results(pl_module, start.datamodule, times, before, logged(trainer, "test"))
        if trainer.is_global_zero:
            results = self.finish(trainer, pl_module, start, results)
        self.results = results

    def finish(
        self, trainer: L.Trainer, method: UnlearningMethod, start: StartingPoint, results: dict[str, Any]
    ) -> dict[str, Any]:
        """Rank 0's part: what is cached, relearnt, compared, shown and written."""
        datamodule = start.datamodule
        store_unlearned(method, start.cache, start.unlearned_key(trainer, method), results)
        if self.relearn_epochs > 0:  # on a copy: the unlearned model stays as it is
            if start.recipe is None:
                raise ValueError("relearn_epochs needs the original's recipe (original=...): it relearns at its lr")
            settings = nested_trainer_settings(trainer)
            results |= relearn_curve(method.network, datamodule, start.recipe.lr, self.relearn_epochs, settings)
        results = with_gaps(results, self.retrain_candidates())
        log_to_hparams_view(trainer.logger, results, dict(method.hparams), self.labels)
        if self.config is not None:
            results["config"] = self.config
        if self.results_dir is not None:
            run_dir = Path(self.results_dir)
            write_json(run_dir / "split.json", datamodule.split.as_lists())
            write_json(run_dir / "results.json", results)
        if self.verbose:
            console.print(results_table(results))
        return results

    def retrain_candidates(self) -> list[dict[str, Any]]:
        """The Retrain results to pair with: the one given (checked against the run before it started), or those
        found under the folder given."""
        if self.retrain is None:
            return []
        if isinstance(self.retrain, str | Path):
            return read_results(Path(self.retrain))
        return [self.retrain]
