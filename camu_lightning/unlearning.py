"""One unlearning run, the same path from Python, `camu fit`, `camu score` and `camu tune`.

    from camu_lightning import unlearn
    results = unlearn(method, datamodule, trainer, retrain=retrain_results)

Before `trainer.fit`: the method's data request goes to the data module (its training streams) and the method gets
the loaders of its one-off passes; the run is checked; the method gets what it starts from (the original's weights
from a recipe and the cache, unless it was given the trained model; SISA's shards and Unroll's recorded pass);
the original is evaluated. After it: the test, the run's results (metrics, attacks, times, where each starting
point came from), the gaps to a Retrain result, and, where a folder is named, `results.json` and `split.json`.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

from camu_lightning.cache import CheckpointCache, NoCache, RunKeys, cache_key, weights_digest
from camu_lightning.channels_last import ChannelsLast
from camu_lightning.data import UnlearningDataModule
from camu_lightning.files import write_json
from camu_lightning.hparams_view import log_to_hparams_view
from camu_lightning.methods import UnlearningMethod
from camu_lightning.original import OriginalRecipe, on_one_device
from camu_lightning.preparation import check_run, prepare_method, store_unlearned
from camu_lightning.relearn import relearn_curve
from camu_lightning.report import read_results, results_table, run_results, with_gaps
from camu_lightning.terminal import console


def connect(method: UnlearningMethod, datamodule: UnlearningDataModule) -> None:
    """The method's data request, handed over: its training streams to the data module, its passes to it."""
    datamodule.request(method.train_streams())
    method.passes = datamodule.pass_loaders(method.pass_streams())


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


class Unlearning:
    """What happens before and after `trainer.fit(method, datamodule=datamodule)` in an unlearning run.

    Args:
        original: the recipe of the original model, for a method built from a network class (trained once and
            cached under `cache_dir`); None when the method was given the trained model.
        cache_dir: folder of cached originals, training-time state, evaluations and Retrain models; None: nothing is
            cached (each run trains what it needs).
        retrain: a Retrain run's results (its `results.json`, or `unlearn`'s return value) on the same split, or a
            folder searched for the newest such `results.json`: the gaps to Retrain, RTE and ToW come from it.
        results_dir: where `results.json` and `split.json` are written; None: nothing is written.
        stronger_attacks: run the stronger membership-inference attacks at test.
        relearn_epochs: fine-tune the unlearned model on D_r this many epochs and report the relearning curve.
        network: the network's config for cache keys (default: from the method's hyperparameters).
        config: the run's settings, stored in results.json.
        labels: more settings of the run for TensorBoard's HParams view (`camu fit`: the config's variant).
        verbose: print the split and the results table.
    """

    def __init__(
        self,
        method: UnlearningMethod,
        datamodule: UnlearningDataModule,
        trainer: L.Trainer,
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
    ) -> None:
        if relearn_epochs < 0:
            raise ValueError(f"relearn_epochs must be >= 0 (0: no relearning), got {relearn_epochs}")
        if original is None and not method.given_model and method.starts_from_original:
            raise ValueError(
                f"{type(method).__name__} was built from a network class: give it the trained model "
                "(network=your_model), or the original's recipe (original=OriginalRecipe(...))"
            )
        self.method, self.datamodule, self.trainer = method, datamodule, trainer
        self.recipe, self.retrain, self.results_dir = original, retrain, results_dir
        self.cache = CheckpointCache(cache_dir) if cache_dir is not None else NoCache()
        self.stronger_attacks, self.relearn_epochs = stronger_attacks, relearn_epochs
        self.network, self.config, self.verbose = network or network_config(method), config, verbose
        self.labels = labels or {}
        self.seed = int(method.hparams.seed)
        self.results: dict[str, Any] = {}

    @property
    def keys(self) -> RunKeys:
        return RunKeys.of(self.datamodule, self.network, self.seed)

    def nested_trainer_settings(self) -> dict[str, Any]:
        """A Trainer for training before the run (original, training-time state): one device of the run's kind (under
        DDP every rank trains it alike; DDP would change the recipe's batch), the run's precision, no logger,
        checkpoints or validation, a progress bar when the run shows one."""
        trainer = self.trainer
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

    # ----------------------------------------------------------------- before fit
    def before_fit(self) -> None:
        """Connect, check and prepare the run, then evaluate the original (the model the method starts from)."""
        if self.verbose:
            summary = ", ".join(f"{key} {value}" for key, value in self.datamodule.summary().items())
            console.print(f"split: {summary}", highlight=False)
        self.prepare()
        method = self.method
        starts_from_a_model = method.starts_from_original or method.training_state_settings() is not None
        # `--trainer.limit_val_batches 0` turns validation off, the original's evaluation with it (`camu tune`'s trials)
        if starts_from_a_model and self.trainer.limit_val_batches != 0:
            self.results |= {f"original_{key}": value for key, value in self.evaluate_original().items()}

    def prepare(self) -> None:
        """Connect the method to the data, check the run and load what the method starts from (cached or trained
        now); reseed."""
        method, trainer = self.method, self.trainer
        connect(method, self.datamodule)
        check_run(method, trainer)
        self.results = {"split_key": cache_key(self.keys.pairing())} | prepare_method(
            method,
            self.datamodule,
            self.cache,
            self.keys,
            self.recipe,
            self.nested_trainer_settings(),
            self.unlearned_key(),
        )
        if self.results.get("unlearned_from_cache"):
            trainer.limit_train_batches = 0  # the cached model is the run's result: nothing to train
        L.seed_everything(self.seed, verbose=False)  # whatever the cache held

    def evaluate_original(self) -> dict[str, float]:
        """The model before unlearning, evaluated, or its evaluation from the cache: a grid or a study evaluates one
        original under every method and seed alike. On several devices every rank validates (a rank that alone found
        the entry, written meanwhile by another run, would leave the others waiting in the collective)."""
        trainer, cache = self.trainer, self.cache
        one_device = trainer.num_devices * trainer.num_nodes == 1
        key = self.original_evaluation_key()
        if one_device and (entry := cache.load("evaluation", key)) is not None:
            self.results["original_evaluation_from_cache"] = True
            metrics = entry["extra"]["metrics"]
            if trainer.logger is not None:  # the curves' first point, as the validation would have logged it
                trainer.logger.log_metrics({f"val/{name}": value for name, value in metrics.items()}, step=0)
            return metrics
        trainer.validate(self.method, datamodule=self.datamodule, verbose=False)
        metrics = {name: float(value) for name, value in self.method.evaluation["val"].items()}
        if one_device and cache.saves:
            cache.save("evaluation", key, {}, {"metrics": metrics})
            self.results["original_evaluation_from_cache"] = False
        return metrics

    def original_evaluation_key(self) -> dict[str, Any]:
        method, data, trainer = self.method, self.datamodule.hparams, self.trainer
        rows = {name: data[name] for name in ("mia_attack_size", "forget_repeat", "eval_batch_size")}
        numerics = {
            "precision": str(trainer.precision),
            "channels_last": any(isinstance(callback, ChannelsLast) for callback in trainer.callbacks),
            "device": trainer.strategy.root_device.type,
        }
        reader = type(method).evaluation_logits.__qualname__  # e.g. BoundaryExpanding's drops its shadow class
        return self.keys.evaluation(weights_digest(method.network.state_dict()), rows, reader, numerics)

    def unlearned_key(self) -> dict[str, Any]:
        trainer = self.trainer
        channels_last = any(isinstance(callback, ChannelsLast) for callback in trainer.callbacks)
        recipe = {key: value for key, value in self.method.hparams.items() if key not in ("network", "seed")}
        device = trainer.strategy.root_device.type
        return self.keys.unlearned(recipe, trainer.max_epochs, str(trainer.precision), channels_last, device)

    # ----------------------------------------------------------------- after fit
    def after_fit(self) -> dict[str, Any]:
        """Test the unlearned model; its results (on rank 0: every rank returns them, the others without gaps)."""
        method, datamodule, trainer = self.method, self.datamodule, self.trainer
        method.stronger_attacks_at_test = self.stronger_attacks
        trainer.test(method, datamodule=datamodule, verbose=False)
        results = run_results(method, datamodule, self.seed, self.results)
        if not trainer.is_global_zero:
            return results
        store_unlearned(method, self.cache, self.unlearned_key(), results)
        if self.relearn_epochs > 0:  # on a copy: the unlearned model stays as it is
            recipe_lr = self.recipe.lr if self.recipe is not None else None
            if recipe_lr is None:
                raise ValueError("relearn_epochs needs the original's recipe (original=...): it relearns at its lr")
            results |= relearn_curve(
                method.network, datamodule, recipe_lr, self.relearn_epochs, self.nested_trainer_settings()
            )
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
        """The Retrain results to pair with: the one given (refused when it is of another split), or those found
        under the folder given."""
        if self.retrain is None:
            return []
        if isinstance(self.retrain, str | Path):
            return read_results(Path(self.retrain))
        retrain = self.retrain
        split_key = self.results["split_key"]
        if retrain.get("method") != "Retrain" or retrain.get("split_key") != split_key:
            raise ValueError(
                "retrain must be a Retrain run's results on this run's data, network, split and seed "
                f"(split_key {split_key}), got {retrain.get('method')} with split_key {retrain.get('split_key')}"
            )
        return [retrain]

    def run(self) -> dict[str, Any]:
        self.before_fit()
        self.trainer.fit(self.method, datamodule=self.datamodule)
        return self.after_fit()


def default_trainer(max_epochs: int) -> L.Trainer:
    """A Trainer for `unlearn` when none is given: the method's epochs, a rich progress bar, no checkpoints."""
    return L.Trainer(max_epochs=max_epochs, enable_checkpointing=False, logger=False, callbacks=[RichProgressBar()])


def unlearn(
    method: UnlearningMethod,
    datamodule: UnlearningDataModule,
    trainer: L.Trainer | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Unlearn the data module's forget set with the method and measure it: what `camu fit` reports.

    Args:
        method: an UnlearningMethod, e.g. `CaMU(network=your_trained_model, ...)`.
        datamodule: the data and the forget request.
        trainer: the Lightning Trainer of the unlearning (default: 1 epoch, progress bar, no logger).
        settings: the `Unlearning` options (retrain, cache_dir, results_dir, original, stronger_attacks,
            relearn_epochs, verbose).

    Returns:
        The results: `original_<metric>` (the model before unlearning), the unlearned model's metrics and attacks,
        `time_unlearn_s`, and with `retrain` the gaps to it (`gap_<metric>`, `avg_gap`, `rte`, `tow`).
    """
    return Unlearning(method, datamodule, trainer or default_trainer(1), **settings).run()
