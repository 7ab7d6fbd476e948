"""`camu`: the LightningCLI behind every run.

`camu fit --config configs/mnist_camu.yaml` loads the data and the split, takes the original model from the
cache (training it first when missing), evaluates it, unlearns, evaluates the result, prints a table and
writes `results.json` and `split.json` beside `config.yaml` in `lightning_logs/version_N/`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI
from rich.console import Console
from rich.logging import RichHandler

from camu_lightning import __version__
from camu_lightning.cache import CacheError, CheckpointCache, cache_key, write_json
from camu_lightning.channels_last import ChannelsLast
from camu_lightning.data import UnlearningDataModule
from camu_lightning.methods import DivergenceError, Retrain, UnlearningMethod
from camu_lightning.original import Classifier, OriginalRecipe, fit_state_dict, read_user_checkpoint
from camu_lightning.report import gaps_to_retrain, plain, results_table

log = logging.getLogger("camu_lightning")
console = Console(stderr=True)


class CamuCLI(LightningCLI):
    """LightningCLI with the original-model cache before fit and the evaluation report after it."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_class_arguments(
            OriginalRecipe, "original", help="The original model: its training recipe or a checkpoint."
        )
        parser.add_argument(
            "--cache_dir",
            type=str,
            default="camu_cache",
            help="Folder of cached original models (content-keyed, safe to delete).",
        )
        parser.link_arguments("seed_everything", "data.split_seed")
        parser.link_arguments("seed_everything", "model.init_args.seed")  # methods seeding their own state (SISA)
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.input_shape", "model.init_args.input_shape", apply_on="instantiate")
        # Only methods that step in pixel space take these (Boundary Shrink); for the others the link is ignored.
        parser.link_arguments("data.pixel_mean", "model.init_args.pixel_mean", apply_on="instantiate")
        parser.link_arguments("data.pixel_std", "model.init_args.pixel_std", apply_on="instantiate")

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """The configured Trainer, with a rich progress bar unless `--trainer.enable_progress_bar false` or the
        config names its own, so that turning the bar off never means editing the callback list."""
        trainer = self.run_config_init.trainer
        callbacks = trainer.callbacks if isinstance(trainer.callbacks, list) else [trainer.callbacks]
        callbacks = [callback for callback in callbacks if callback is not None]
        if trainer.enable_progress_bar is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, RichProgressBar()]
        return super().instantiate_trainer(**kwargs)

    # ----------------------------------------------------------------- before fit: the original model
    def before_fit(self) -> None:
        datamodule, method = self.datamodule, self.model
        log.info("data: %s", ", ".join(f"{key} {value}" for key, value in datamodule.summary().items()))
        self.results: dict[str, Any] = {}
        if method.starts_from_original:
            method.load_original(self.original_state_dict())
        state_settings = method.training_state_settings()
        if state_settings is not None:
            self.prepare_training_state(state_settings)
        if isinstance(method, Retrain):
            self.reuse_cached_retrain()
        L.seed_everything(self.run_seed, verbose=False)  # the same RNG state whether anything was cached or not
        if method.starts_from_original or state_settings is not None:
            # The pre-unlearning model: the original, or the method's own state (Unroll's recorded pass).
            self.trainer.validate(method, datamodule=datamodule, verbose=False)
            self.results |= {f"original_{key}": value for key, value in method.evaluation["val"].items()}

    @property
    def run_config(self):
        """The parsed settings of this run (under the subcommand's key when there is one)."""
        return self.config[self.subcommand] if self.subcommand else self.config

    @property
    def run_config_init(self):
        """The instantiated settings of this run (callbacks, data module, model as objects)."""
        return self.config_init[self.subcommand] if self.subcommand else self.config_init

    @property
    def run_seed(self) -> int:
        return int(self.run_config.seed_everything)

    def original_state_dict(self) -> dict[str, torch.Tensor]:
        recipe: OriginalRecipe = self.run_config_init.original
        network = self.model.network
        if recipe.checkpoint is not None:
            self.results["original_source"] = str(recipe.checkpoint)
            return fit_state_dict(
                network, read_user_checkpoint(recipe.checkpoint), f"original.checkpoint {recipe.checkpoint}"
            )
        settings = self.original_settings(recipe)
        self.original_key_settings = settings
        cache = self.cache
        entry = cache.load("original", settings)
        path = cache.path("original", self.results.setdefault("original_cache_key", cache_key(settings)))
        if entry is not None:
            log.info("original model: cached %s", path)
            self.results |= {"original_source": "cache", "time_original_s": entry["extra"]["time_original_s"]}
            return fit_state_dict(network, entry["state_dict"], f"cached original checkpoint {path}")
        log.info("original model: none cached for these settings; training it (%d epochs) into %s", recipe.epochs, path)
        started = time.perf_counter()
        state_dict = self.train_original(recipe)
        elapsed = time.perf_counter() - started
        cache.save("original", settings, state_dict, {"time_original_s": elapsed})
        self.results |= {"original_source": "trained", "time_original_s": elapsed}
        return state_dict

    @property
    def cache(self) -> CheckpointCache:
        return CheckpointCache(self.run_config.cache_dir)

    def nested_trainer_settings(self) -> dict[str, Any]:
        """Trainer settings for training before the run (original model, training-time state): the run's
        devices, no logger or checkpoints, a progress bar when the run shows one."""
        trainer = self.run_config.trainer
        return {
            "accelerator": trainer.accelerator,
            "devices": trainer.devices,
            "strategy": trainer.strategy,
            "logger": False,
            "enable_checkpointing": False,
            "enable_model_summary": False,
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
            "enable_progress_bar": trainer.enable_progress_bar,
            "callbacks": [RichProgressBar()] if trainer.enable_progress_bar is not False else [],
            "default_root_dir": self.trainer.default_root_dir,
        }

    def prepare_training_state(self, state_settings: dict[str, Any]) -> None:
        """Load the method's training-time state from the cache, creating it (timed as time_prepare_s) if missing."""
        method, datamodule = self.model, self.datamodule
        settings = {
            "original": getattr(self, "original_key_settings", None),
            "state": state_settings,
            "split": datamodule.split_identity() if state_settings.get("split_dependent") else None,
            "dataset": datamodule.dataset_identity(),
        }
        entry = self.cache.load("state", settings)
        path = self.cache.path("state", cache_key(settings))
        if entry is None:
            log.info("%s: creating its training-time state into %s", type(method).__name__, path)
            started = time.perf_counter()
            state = method.create_training_state(datamodule, self.nested_trainer_settings())
            elapsed = time.perf_counter() - started
            self.cache.save("state", settings, state, {"time_prepare_s": elapsed})
            self.results |= {"time_prepare_s": elapsed, "prepare_from_cache": False}
        else:
            log.info("%s: training-time state from %s", type(method).__name__, path)
            state = entry["state_dict"]
            self.results |= {"time_prepare_s": entry["extra"]["time_prepare_s"], "prepare_from_cache": True}
        method.load_training_state(state)

    def retrain_settings(self) -> dict[str, Any]:
        """What determines a Retrain model: data, split, network, recipe, epochs, run seed, precision and memory
        layout (the last two change the weights by rounding only, but a cached model must be the one a rerun gives)."""
        return {
            "split": self.split_settings(),
            "recipe": dict(self.model.hparams),
            "epochs": self.trainer.max_epochs,
            "precision": str(self.trainer.precision),
            "channels_last": any(isinstance(callback, ChannelsLast) for callback in self.trainer.callbacks),
        }

    def split_settings(self) -> dict[str, Any]:
        """Pairs runs on the same data, network, forget set and run seed (a method with its Retrain)."""
        datamodule = self.datamodule
        return {
            "dataset": datamodule.dataset_identity(),
            "pipeline": datamodule.hparams.pipeline,
            "network": self.network_settings(),
            "split": datamodule.split_identity(),
            "seed": self.run_seed,
        }

    def reuse_cached_retrain(self) -> None:
        """A cached Retrain of the same split and recipe replaces training (its time is the stored one)."""
        entry = self.cache.load("retrain", self.retrain_settings())
        if entry is None:
            return
        log.info("Retrain: cached model for this split and recipe; skipping its training")
        self.model.network.load_state_dict(entry["state_dict"])
        self.trainer.limit_train_batches = 0
        self.results |= {"retrain_from_cache": True, "time_unlearn_s": entry["extra"]["time_unlearn_s"]}

    def network_settings(self) -> dict[str, Any]:
        datamodule = self.datamodule
        network = self.run_config.model.init_args.network.as_dict()
        network["init_args"] = network.get("init_args", {}) | {
            "num_classes": datamodule.num_classes,
            "input_shape": list(datamodule.input_shape),
        }
        return network

    def original_settings(self, recipe: OriginalRecipe) -> dict[str, Any]:
        """Everything that determines the original's weights: data, network, recipe (seed and precision included)
        and the package's major version."""
        datamodule = self.datamodule
        return {
            "dataset": datamodule.dataset_identity(),
            "pipeline": datamodule.hparams.pipeline,
            "network": self.network_settings(),
            "recipe": recipe.training_settings(),
            "precision": recipe.precision,
            "package_major": __version__.split(".")[0],
        }

    def train_original(self, recipe: OriginalRecipe) -> dict[str, torch.Tensor]:
        """A fresh network from the method's network class, seeded by original.seed, trained by the recipe."""
        L.seed_everything(recipe.seed, verbose=False)
        network = self.model.network_factory(self.datamodule.num_classes, self.datamodule.input_shape)
        classifier = Classifier(network, recipe.lr, recipe.weight_decay, recipe.batch_size)
        trainer = L.Trainer(**self.nested_trainer_settings(), max_epochs=recipe.epochs, precision=recipe.precision)
        trainer.fit(classifier, datamodule=self.datamodule)
        return {key: value.detach().cpu() for key, value in classifier.network.state_dict().items()}

    # ----------------------------------------------------------------- after fit: final evaluation and report
    def after_fit(self) -> None:
        method, datamodule = self.model, self.datamodule
        self.trainer.test(method, datamodule=datamodule, verbose=False)
        if not self.trainer.is_global_zero:
            return
        results = {
            "status": "ok",
            "method": type(method).__name__,
            "dataset": datamodule.hparams.dataset,
            "seed": self.run_seed,
            "version": __version__,
            **datamodule.summary(),
            **method.unlearning_summary(),
            **self.results,
            **method.evaluation["test"],
        }
        retrain_results = self.cache.root / "retrain_results" / f"{cache_key(self.split_settings())}.json"
        if isinstance(method, Retrain):
            if not results.get("retrain_from_cache"):
                extra = {"time_unlearn_s": results["time_unlearn_s"]}
                state_dict = {key: value.detach().cpu() for key, value in method.network.state_dict().items()}
                self.cache.save("retrain", self.retrain_settings(), state_dict, extra)
            write_json(retrain_results, {key: value for key, value in results.items() if isinstance(value, float)})
        elif retrain_results.is_file():
            results |= gaps_to_retrain(results, json.loads(retrain_results.read_text()), datamodule.class_removal)
        results["config"] = plain(self.run_config.as_dict())
        run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        write_json(run_dir / "split.json", datamodule.split.as_lists())
        write_json(run_dir / "results.json", results)
        console.print(results_table(results))
        console.print(f"results: {run_dir / 'results.json'}")


class _DropLightningAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "💡 Tip" not in record.getMessage()


def quiet_known_noise() -> None:
    """Silence library messages that say nothing about this run."""
    # Frozen copies (the original model, teachers) are in eval mode on purpose.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    # The original model's trainer has no validation loop, though the data module offers validation data.
    warnings.filterwarnings("ignore", message="You passed in a `val_dataloader` but have no `validation_step`")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLightningAdverts())


def main(args: list[str] | None = None) -> None:
    """Console entry point: known errors end the run with one line and exit status 2."""
    package_log = logging.getLogger("camu_lightning")
    if not package_log.handlers:
        package_log.addHandler(RichHandler(console=console, show_path=False))
        package_log.setLevel(logging.INFO)
    quiet_known_noise()
    try:
        CamuCLI(
            UnlearningMethod,
            UnlearningDataModule,
            subclass_mode_model=True,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            args=args,
            parser_kwargs={"description": "Unlearn data from a trained classifier and measure the forgetting."},
        )
    except (ValueError, FileNotFoundError, CacheError, DivergenceError) as error:
        console.print(f"error: {own_error(error)}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


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
