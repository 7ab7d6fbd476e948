"""What the method starts from, in place before any work: the run's checks, the original's weights (from the
method's given model, the cache, or the recipe), training-time state (SISA's shards, Unroll's recorded pass) and a
cached Retrain; a Lightning callback."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

from camu_lightning.cache import CheckpointCache, NoCache
from camu_lightning.channels_last import ChannelsLast
from camu_lightning.data import UnlearningDataModule
from camu_lightning.keys import RunKeys, cache_key
from camu_lightning.methods import UnlearningMethod
from camu_lightning.original import OriginalRecipe, on_one_device
from camu_lightning.run.guards import check_built, check_network, check_retrain, check_run
from camu_lightning.run.preparation import prepare_method


class StartingPoint(L.Callback):
    """Checks the run and loads what the method starts from at the first setup (`validate` or `fit`), then reseeds
    with the run seed, so a run's numbers do not depend on what the cache held. At fit start the network is put in
    train mode whatever mode it arrived in (a model handed over after `model.eval()`); frozen copies stay in eval.

    Args:
        original: the recipe of the original model, for a method built from a network class (trained once and
            cached under `cache_dir`); None when the method was given the trained model.
        cache_dir: folder of cached originals, training-time state, evaluations and Retrain models; None: nothing is
            cached (each run trains what it needs).
        network: the network's config in cache keys (default: from the method's hyperparameters).
        retrain: a Retrain run's results to pair with, checked here, before any work.
    """

    def __init__(
        self,
        original: OriginalRecipe | None = None,
        cache_dir: str | Path | None = None,
        network: dict[str, Any] | None = None,
        retrain: dict[str, Any] | None = None,
    ) -> None:
        self.recipe, self.network, self.retrain = original, network, retrain
        self.cache = CheckpointCache(cache_dir) if cache_dir is not None else NoCache()
        self.keys: RunKeys | None = None
        self.datamodule: UnlearningDataModule | None = None
        self.prepared: dict[str, Any] | None = None  # results.json's lines on where each starting point came from

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.prepared is None:
            self.prepare(trainer, pl_module, trainer.datamodule)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.train()

    def prepare(self, trainer: L.Trainer, method: UnlearningMethod, datamodule: UnlearningDataModule) -> None:
        """Refuse a run that would do nothing or be wrong; then load the starting point (cached or created now)."""
        check_built(method, self.recipe is not None)
        check_run(method, trainer)
        identity = identity_keys(self.keys_of(method, datamodule))
        if self.retrain is not None:
            check_retrain(self.retrain, identity | {"seed": int(method.hparams.seed)})
        check_network(method, datamodule)
        self.prepared = identity | prepare_method(
            method,
            datamodule,
            self.cache,
            self.keys,
            self.recipe,
            nested_trainer_settings(trainer),
            self.unlearned_key(trainer, method),
        )
        if self.prepared.get("unlearned_from_cache"):
            trainer.limit_train_batches = 0  # the cached model is the run's result: nothing to train
        L.seed_everything(int(method.hparams.seed), verbose=False)  # whatever the cache held

    def keys_of(self, method: UnlearningMethod, datamodule: UnlearningDataModule) -> RunKeys:
        """The settings behind each cache entry of this run (computed once: the data's content is hashed)."""
        if self.keys is None:
            self.datamodule = datamodule
            self.keys = RunKeys.of(datamodule, self.network or network_config(method), int(method.hparams.seed))
        return self.keys

    def unlearned_key(self, trainer: L.Trainer, method: UnlearningMethod) -> dict[str, Any]:
        """The cache settings of a method's result, for methods that cache it (Retrain)."""
        channels_last = any(isinstance(callback, ChannelsLast) for callback in trainer.callbacks)
        recipe = own_settings(method.hparams)
        device = trainer.strategy.root_device.type
        return self.keys.unlearned(recipe, trainer.max_epochs, str(trainer.precision), channels_last, device)


def own_settings(hparams: dict[str, Any]) -> dict[str, Any]:
    """A module's own settings: its hyperparameters without the network, the seed and the bookkeeping LightningCLI
    adds (`_class_path`, `_instantiator`), so a run built in Python and the same run built from a config share
    cache entries."""
    return {key: value for key, value in hparams.items() if key not in ("network", "seed") and key[0] != "_"}


def identity_keys(keys: RunKeys) -> dict[str, Any]:
    """What pairs a run with its Retrain: the combination (`split_key`) and each part, so a mismatch can be named."""
    return {
        "split_key": cache_key(keys.pairing()),
        "data_key": cache_key({"dataset": keys.dataset, "pipeline": keys.pipeline}),
        "network_key": cache_key(keys.network),
        "forget_set_key": cache_key({"split": keys.split}),
    }


def nested_trainer_settings(trainer: L.Trainer) -> dict[str, Any]:
    """A Trainer for training before or after the run (original, training-time state, relearning): one device of the
    run's kind (under DDP every rank trains it alike; DDP would change the recipe's batch), the run's precision, no
    logger, checkpoints or validation, a progress bar when the run shows one."""
    progress = any(isinstance(callback, ProgressBar) for callback in trainer.callbacks)
    quiet = {"logger": False, "enable_checkpointing": False, "enable_model_summary": False, "limit_val_batches": 0}
    return (
        quiet
        | on_one_device(trainer.strategy.root_device)
        | {
            "precision": trainer.precision,
            "num_sanity_val_steps": 0,
            "default_root_dir": trainer.default_root_dir,
            "enable_progress_bar": progress,
            "callbacks": [RichProgressBar()] if progress else [],
        }
    )


def network_config(method: UnlearningMethod) -> dict[str, Any]:
    """The network's identity in cache keys: its config (class path, init args) as `camu fit` parses it."""
    network = method.hparams["network"]
    if isinstance(network, dict):
        return network
    network = getattr(network, "func", network)  # a class, or a functools.partial of one
    return {"class_path": class_path(network)}


def class_path(cls: type) -> str:
    """The shortest importable path of a class, as jsonargparse writes it (`camu_lightning.models.CNN`)."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = ".".join(parts[:end])
        if getattr(import_module(module), cls.__qualname__, None) is cls:
            return f"{module}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"
