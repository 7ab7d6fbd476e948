"""The original's evaluation (the model before unlearning, metrics.md sections 1-5), from the cache or recorded from
`trainer.validate`; a Lightning callback."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn

from camu_lightning.cache import weights_digest
from camu_lightning.channels_last import ChannelsLast
from camu_lightning.methods import UnlearningMethod
from camu_lightning.run.find import find_callback
from camu_lightning.run.starting_point import StartingPoint


def logged(trainer: L.Trainer, stage: str) -> dict[str, float]:
    """The evaluation a method logged at this stage (`<stage>/<metric>`, float64), as plain numbers."""
    prefix = f"{stage}/"
    return {
        name.removeprefix(prefix): float(value)
        for name, value in trainer.callback_metrics.items()
        if name.startswith(prefix)
    }


class OriginalEvaluation(L.Callback):
    """The `original_<metric>` lines of the results: the first stand-alone `trainer.validate` of the run (before
    fit), or the cache's entry for the same weights, rows and numerics, which a grid or a study shares across every
    method and seed. On several devices every rank validates (a rank that alone found the entry, written meanwhile
    by another run, would leave the others waiting in the collective). Needs the run's `StartingPoint`."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] | None = None
        self.from_cache: bool | None = None

    def wanted(self, trainer: L.Trainer, method: UnlearningMethod) -> bool:
        """Whether the run evaluates its starting point: a method that starts from a model, validation not turned
        off (`--trainer.limit_val_batches 0`, as `camu tune`'s trials do), and not done yet."""
        starts_from_a_model = method.starts_from_original or method.training_state_settings() is not None
        return starts_from_a_model and trainer.limit_val_batches != 0 and self.metrics is None

    def load_cached(self, trainer: L.Trainer, method: UnlearningMethod) -> bool:
        """Take the evaluation from the cache where it is there (then the curves' first point is logged as the
        validation would have)."""
        start = find_callback(trainer, StartingPoint)
        if trainer.num_devices * trainer.num_nodes > 1:
            return False
        entry = start.cache.load("evaluation", self.key(trainer, method))
        if entry is None:
            return False
        self.metrics, self.from_cache = entry["extra"]["metrics"], True
        if trainer.logger is not None:
            trainer.logger.log_metrics({f"val/{name}": value for name, value in self.metrics.items()}, step=0)
        return True

    def on_validation_end(self, trainer: L.Trainer, pl_module: UnlearningMethod) -> None:
        if trainer.state.fn != TrainerFn.VALIDATING or self.metrics is not None:
            return
        self.metrics = logged(trainer, "val")
        start = find_callback(trainer, StartingPoint)
        if trainer.num_devices * trainer.num_nodes == 1 and start.cache.saves:
            start.cache.save("evaluation", self.key(trainer, pl_module), {}, {"metrics": self.metrics})
            self.from_cache = False

    def results(self) -> dict[str, Any]:
        """results.json's lines: `original_<metric>`, and whether they came from the cache (where one is used)."""
        if self.metrics is None:
            return {}
        cached = {} if self.from_cache is None else {"original_evaluation_from_cache": self.from_cache}
        return cached | {f"original_{name}": value for name, value in self.metrics.items()}

    def key(self, trainer: L.Trainer, method: UnlearningMethod) -> dict[str, Any]:
        """The weights, rows, attack roles and numerics the evaluation depends on."""
        start = find_callback(trainer, StartingPoint)
        data = start.datamodule.hparams
        rows = {name: data[name] for name in ("mia_attack_size", "forget_repeat", "eval_batch_size")}
        numerics = {
            "precision": str(trainer.precision),
            "channels_last": any(isinstance(callback, ChannelsLast) for callback in trainer.callbacks),
            "device": trainer.strategy.root_device.type,
        }
        reader = type(method).evaluation_logits.__qualname__  # e.g. BoundaryExpanding's drops its shadow class
        return start.keys.evaluation(weights_digest(method.network.state_dict()), rows, reader, numerics)
