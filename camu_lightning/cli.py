"""`camu`: the LightningCLI behind every run.

`camu fit --config configs/mnist_camu.yaml` loads the data and the split, takes the original model from the
cache (training it first when missing), evaluates it, unlearns, evaluates the result, prints a table and
writes `results.json` and `split.json` beside `config.yaml` in `lightning_logs/version_N/`.
"""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path
from typing import Any

import lightning as L
from jsonargparse import ArgumentError
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI

from camu_lightning.cache import CacheError, CheckpointCache, RunKeys, cache_key, weights_digest
from camu_lightning.channels_last import ChannelsLast
from camu_lightning.data import UnlearningDataModule
from camu_lightning.files import write_json
from camu_lightning.methods import DivergenceError, UnlearningMethod
from camu_lightning.original import OriginalRecipe, on_one_device
from camu_lightning.preparation import check_run, prepare_method, store_unlearned
from camu_lightning.relearn import relearn_curve
from camu_lightning.report import plain, read_results, results_table, run_results, with_gaps
from camu_lightning.run_folder import RecordInterruption, claim_run_folder
from camu_lightning.sigterm import stop_on_sigterm
from camu_lightning.terminal import console, one_line_parser_error, own_error, print_error, set_up_terminal

# Data module attributes given to the method's argument of the same name; a method without the argument ignores
# the link (pixel statistics: Boundary Shrink; training rows and the deletion request: SISA).
LINKED_FROM_DATA = ("num_classes", "input_shape", "pixel_mean", "pixel_std", "train_rows", "forget_rows")
DESCRIPTION = "Unlearn data from a trained classifier and measure the forgetting."
COMMANDS = {
    "score": "camu_lightning.score",
    "tune": "camu_lightning.tune",
    "bench": "camu_lightning.bench.run",
    "report": "camu_lightning.bench.report",
}
# What `camu fit` and `camu score` build: any UnlearningMethod subclass (`--model CaMU`) and the data module.
CLI_CLASSES = {
    "model_class": UnlearningMethod,
    "datamodule_class": UnlearningDataModule,
    "subclass_mode_model": True,
    "auto_configure_optimizers": False,
}


class CamuCLI(LightningCLI):
    """LightningCLI with the cached original and training-time state before fit and the report after it."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_class_arguments(OriginalRecipe, "original", help="The original model: its recipe or a checkpoint.")
        parser.add_argument("--cache_dir", type=str, default="camu_cache", help="Folder of cached models (deletable).")
        parser.add_argument(
            "--relearn_epochs",
            type=int,
            default=0,
            help="After the test, fine-tune the unlearned model on D_r this many epochs and report how fast it "
            "regains D_f (relearn_* keys; the paper's RQ3). 0: no relearning.",
        )
        parser.add_argument(
            "--stronger_attacks",
            type=bool,
            default=True,
            help="Run the stronger membership-inference attacks at test (mia_loss_lr, mia_svc_efficacy, mia_auc, "
            "mia_tpr_at_1fpr). false: accuracies and the paper's mia only (camu tune's trials, whose objective reads "
            "nothing else: the SVC alone is about half of a trial's test on 2 CPUs).",
        )
        parser.add_argument(
            "--tune",
            type=dict[str, dict[str, Any]] | None,
            default=None,
            help="Ranges `camu tune` searches (setting: {low, high[, log]} or {choices}); camu fit ignores them.",
        )
        parser.set_defaults({"trainer.enable_model_summary": False})  # its FLOPs column is 0 for these networks
        parser.link_arguments("seed_everything", "data.split_seed")
        parser.link_arguments("seed_everything", "model.init_args.seed")
        for name in LINKED_FROM_DATA:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """The configured Trainer in a folder of its own, marking an interrupted run, plus a rich progress bar unless
        `--trainer.enable_progress_bar false` or the config names its own (turning it off never means editing the
        callback list)."""
        trainer = (self.config_init[self.subcommand] if self.subcommand else self.config_init).trainer
        configured = trainer.callbacks if isinstance(trainer.callbacks, list) else [trainer.callbacks]
        callbacks = [*filter(None, configured), RecordInterruption()]
        if trainer.enable_progress_bar is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(RichProgressBar())
        run_trainer = super().instantiate_trainer(**(kwargs | {"callbacks": callbacks}))
        claim_run_folder(run_trainer)
        return run_trainer

    @property
    def settings(self):
        """This run's parsed settings (under the subcommand's key when there is one)."""
        return self.config[self.subcommand] if self.subcommand else self.config

    @property
    def recipe(self) -> OriginalRecipe:
        """The original model's recipe, instantiated."""
        return (self.config_init[self.subcommand] if self.subcommand else self.config_init).original

    @property
    def keys(self) -> RunKeys:
        network = self.settings.model.init_args.network.as_dict()
        return RunKeys.of(self.datamodule, network, int(self.settings.seed_everything))

    def nested_trainer_settings(self) -> dict[str, Any]:
        """A Trainer for training before the run (original, training-time state): one device of the run's kind (under
        DDP every rank trains it alike; DDP would change the recipe's batch), the run's precision, no logger,
        checkpoints or validation, a progress bar when the run shows one."""
        device, progress = self.trainer.strategy.root_device, self.settings.trainer.enable_progress_bar is not False
        quiet = {"logger": False, "enable_checkpointing": False, "enable_model_summary": False, "limit_val_batches": 0}
        return (
            quiet
            | on_one_device(device)
            | {
                "precision": self.trainer.precision,
                "num_sanity_val_steps": 0,
                "default_root_dir": self.trainer.default_root_dir,
                "enable_progress_bar": progress,
                "callbacks": [RichProgressBar()] if progress else [],
            }
        )

    def before_fit(self) -> None:
        console.print("split: " + ", ".join(f"{k} {v}" for k, v in self.datamodule.summary().items()), highlight=False)
        self.prepare()
        starts_from_a_model = self.model.starts_from_original or self.model.training_state_settings() is not None
        # `--trainer.limit_val_batches 0` turns validation off, the original's evaluation with it (`camu tune`'s trials)
        if starts_from_a_model and self.trainer.limit_val_batches != 0:
            self.results |= {f"original_{key}": value for key, value in self.evaluate_original().items()}

    def evaluate_original(self) -> dict[str, float]:
        """The model before unlearning, evaluated, or its evaluation from the cache: a grid or a study evaluates one
        original under every method and seed alike. On several devices every rank validates (a rank that alone found
        the entry, written meanwhile by another run, would leave the others waiting in the collective)."""
        trainer, cache = self.trainer, CheckpointCache(self.settings.cache_dir)
        one_device = trainer.num_devices * trainer.num_nodes == 1
        key = self.original_evaluation_key()
        if one_device and (entry := cache.load("evaluation", key)) is not None:
            self.results["original_evaluation_from_cache"] = True
            metrics = entry["extra"]["metrics"]
            if trainer.logger is not None:  # the curves' first point, as the validation would have logged it
                trainer.logger.log_metrics({f"val/{name}": value for name, value in metrics.items()}, step=0)
            return metrics
        trainer.validate(self.model, datamodule=self.datamodule, verbose=False)
        metrics = {name: float(value) for name, value in self.model.evaluation["val"].items()}
        if one_device:
            cache.save("evaluation", key, {}, {"metrics": metrics})
            self.results["original_evaluation_from_cache"] = False
        return metrics

    def original_evaluation_key(self) -> dict[str, Any]:
        method, data, trainer = self.model, self.datamodule.hparams, self.trainer
        rows = {name: data[name] for name in ("mia_attack_size", "forget_repeat", "eval_batch_size")}
        numerics = {
            "precision": str(trainer.precision),
            "channels_last": any(isinstance(callback, ChannelsLast) for callback in trainer.callbacks),
            "device": trainer.strategy.root_device.type,
        }
        reader = type(method).evaluation_logits.__qualname__  # e.g. BoundaryExpanding's drops its shadow class
        return self.keys.evaluation(weights_digest(method.network.state_dict()), rows, reader, numerics)

    def prepare(self) -> None:
        """Check the run and load what the method starts from (cached or trained now); reseed."""
        method, trainer, settings = self.model, self.trainer, self.settings
        if settings.relearn_epochs < 0:
            raise ValueError(f"relearn_epochs must be >= 0 (0: no relearning), got {settings.relearn_epochs}")
        check_run(method, trainer)
        self.results = {"split_key": cache_key(self.keys.pairing())} | prepare_method(
            method,
            self.datamodule,
            CheckpointCache(settings.cache_dir),
            self.keys,
            self.recipe,
            self.nested_trainer_settings(),
            self.unlearned_key(),
        )
        if self.results.get("unlearned_from_cache"):
            trainer.limit_train_batches = 0  # the cached model is the run's result: nothing to train
        L.seed_everything(int(settings.seed_everything), verbose=False)  # whatever the cache held

    def unlearned_key(self) -> dict[str, Any]:
        channels_last = any(isinstance(callback, ChannelsLast) for callback in self.trainer.callbacks)
        recipe = {key: value for key, value in self.model.hparams.items() if key not in ("network", "seed")}
        device = self.trainer.strategy.root_device.type
        return self.keys.unlearned(recipe, self.trainer.max_epochs, str(self.trainer.precision), channels_last, device)

    def after_fit(self) -> None:
        method, datamodule = self.model, self.datamodule
        method.stronger_attacks_at_test = self.settings.stronger_attacks
        self.trainer.test(method, datamodule=datamodule, verbose=False)
        run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)  # a collective under DDP: every rank
        if not self.trainer.is_global_zero:
            return
        results = run_results(method, datamodule, int(self.settings.seed_everything), self.results)
        store_unlearned(method, CheckpointCache(self.settings.cache_dir), self.unlearned_key(), results)
        if (epochs := self.settings.relearn_epochs) > 0:  # on a copy: the unlearned model stays as it is
            results |= relearn_curve(method.network, datamodule, self.recipe.lr, epochs, self.nested_trainer_settings())
        results = with_gaps(results, read_results(Path(self.trainer.default_root_dir)))
        results["config"] = plain(self.settings.as_dict())
        write_json(run_dir / "split.json", datamodule.split.as_lists())
        write_json(run_dir / "results.json", results)
        console.print(results_table(results))
        console.print(f"results: {run_dir / 'results.json'}")


def main(args: list[str] | None = None) -> None:
    """Console entry point: known errors end the run with one line and exit status 2; SIGTERM with status 143."""
    stop_on_sigterm()
    command = (sys.argv[1:] if args is None else args)[:1]
    if command and command[0] in COMMANDS:  # the suite's own commands beside LightningCLI's `fit`
        return import_module(COMMANDS[command[0]]).main((sys.argv[1:] if args is None else args)[1:])
    set_up_terminal()
    try:
        CamuCLI(
            **CLI_CLASSES,
            save_config_kwargs={"overwrite": True},
            args=args,
            parser_kwargs={"description": DESCRIPTION, "exit_on_error": False},
        )
    except ArgumentError as error:  # a setting the parser refused: one line, not the usage text
        print_error(f"{one_line_parser_error(str(error))}; `camu fit --help` lists every setting")
    except (ValueError, FileNotFoundError, CacheError, DivergenceError) as error:
        print_error(str(own_error(error)))
