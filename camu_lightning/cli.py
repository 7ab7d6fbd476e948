"""`camu`: the LightningCLI behind every run; it only wires settings to the run's callbacks (`run/`).

`camu fit --config configs/mnist_camu.yaml` loads the data and the split, takes the original model from the
cache (training it first when missing), evaluates it, unlearns, evaluates the result, prints a table and
writes `results.json` and `split.json` beside `config.yaml` in `lightning_logs/version_N/`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI

from camu_lightning.cache import check_cache_writable
from camu_lightning.data import UnlearningDataModule
from camu_lightning.main import COMMANDS, DESCRIPTION
from camu_lightning.main import main as camu_main
from camu_lightning.methods import UnlearningMethod
from camu_lightning.run.configured import add_run_arguments, callback_settings
from camu_lightning.run.run_folder import claim_run_folder, released_on_error
from camu_lightning.run.unlearn import announce_split, evaluate_original, run_callbacks
from camu_lightning.utils.config_files import check_config_options
from camu_lightning.utils.files import check_writable
from camu_lightning.utils.sigterm import stop_on_sigterm
from camu_lightning.utils.terminal import console, one_line_errors, set_up_terminal

# What `camu fit` and `camu score` build: any UnlearningMethod subclass (`--model CaMU`) and the data module.
CLI_CLASSES = {"model_class": UnlearningMethod, "datamodule_class": UnlearningDataModule,
               "subclass_mode_model": True, "auto_configure_optimizers": False}  # fmt: skip


class CamuCLI(LightningCLI):
    """LightningCLI with the cached original and training-time state before fit and the report after it."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser) -> None:
        add_run_arguments(parser)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """The configured Trainer in a folder of its own with the run's callbacks, marking an interrupted or diverged
        run, plus a rich progress bar unless `--trainer.enable_progress_bar false` or the config names its own
        (turning it off never means editing the callback list)."""
        init = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer, settings = init.trainer, self.settings
        check_writable(trainer.default_root_dir or ".", "trainer.default_root_dir")
        check_cache_writable(settings.cache_dir)
        configured = trainer.callbacks if isinstance(trainer.callbacks, list) else [trainer.callbacks]
        callbacks = list(filter(None, configured))
        if trainer.enable_progress_bar is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(RichProgressBar())
        run_trainer = super().instantiate_trainer(**(kwargs | {"callbacks": callbacks}))
        claim_run_folder(run_trainer)
        self.results_dir = Path(run_trainer.log_dir or run_trainer.default_root_dir)  # a collective under DDP
        run_trainer.callbacks.extend(
            run_callbacks(
                **callback_settings(settings, init.original),
                retrain=Path(run_trainer.default_root_dir),  # the newest Retrain of the split among the runs there
                results_dir=self.results_dir,
            )
        )
        return run_trainer

    @property
    def settings(self):
        """This run's parsed settings (under the subcommand's key when there is one)."""
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_fit(self) -> None:
        with released_on_error(self.trainer):
            announce_split(self.datamodule)
            evaluate_original(self.trainer, self.model, self.datamodule)

    def after_fit(self) -> None:
        self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        if self.trainer.is_global_zero:
            console.print(f"results: {self.results_dir / 'results.json'}")


def main(args: list[str] | None = None) -> None:
    """`camu fit` (LightningCLI); `camu_lightning.main` hands the other commands to their modules. Known errors end
    the run with one line and exit status 2; SIGTERM with status 143."""
    given = sys.argv[1:] if args is None else args
    if not given or given[0] in ("-h", "--help") or (given[0] in COMMANDS and given[0] != "fit"):
        return camu_main(given)
    stop_on_sigterm()
    set_up_terminal()
    with one_line_errors():
        check_config_options(given)
        parser_settings = {"description": DESCRIPTION, "exit_on_error": False}
        # The command line itself goes to LightningCLI as its own (given as `args` too, it warns on every run).
        own = None if args == sys.argv[1:] else args
        CamuCLI(**CLI_CLASSES, save_config_kwargs={"overwrite": True}, args=own, parser_kwargs=parser_settings)
