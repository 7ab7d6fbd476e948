"""A run built from `camu fit`'s settings (a config and `--group.setting` overrides) without the CLI: what `camu
score` and `camu tune` hand to `unlearn`. One function adds the suite's own settings to both parsers, so the two
cannot drift; the build follows LightningCLI's order (parse, seed, data and model, then the Trainer), so a run
built here draws the same random numbers as `camu fit`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
from jsonargparse import ActionConfigFile, Namespace
from lightning.pytorch.cli import LightningArgumentParser

from camu_lightning.data import UnlearningDataModule
from camu_lightning.data.datamodule import METHOD_LINKS
from camu_lightning.methods import UnlearningMethod
from camu_lightning.original import OriginalRecipe
from camu_lightning.run.results import plain
from camu_lightning.utils.config_files import check_config_options


def add_run_arguments(parser: LightningArgumentParser) -> None:
    """The suite's settings beside the Trainer, model and data groups, and the links between the groups."""
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
    tune = "Ranges `camu tune` searches (setting: {low, high[, log]} or {choices}); camu fit ignores them."
    parser.add_argument("--tune", type=dict[str, dict[str, Any]] | None, default=None, help=tune)
    parser.set_defaults({"trainer.enable_model_summary": False})  # its FLOPs column is 0 for these networks
    parser.link_arguments("seed_everything", "data.split_seed")
    parser.link_arguments("seed_everything", "model.init_args.seed")
    for name in METHOD_LINKS:
        parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")


def run_parser() -> LightningArgumentParser:
    """`camu fit`'s settings (what LightningCLI builds for its `fit` subcommand), as a parser of their own."""
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="A config file (YAML).")
    parser.add_argument("--seed_everything", type=bool | int, default=True, help="The run's seed.")
    parser.add_lightning_class_args(L.Trainer, "trainer")
    parser.add_lightning_class_args(UnlearningMethod, "model", subclass_mode=True)
    parser.add_lightning_class_args(UnlearningDataModule, "data")
    add_run_arguments(parser)
    return parser


def callback_settings(settings: Namespace, original: OriginalRecipe | None) -> dict[str, Any]:
    """`run_callbacks`' settings from a run's parsed settings (and its recipe, instantiated)."""
    tuned = any("tuned" in str(path) for path in settings.get("config") or [])  # a configs/tuned/ file
    return {
        "original": original,
        "cache_dir": settings.cache_dir,
        "stronger_attacks": settings.stronger_attacks,
        "relearn_epochs": settings.relearn_epochs,
        "network": settings.model.init_args.network.as_dict(),
        "config": plain(settings.as_dict()),
        "labels": {"variant": "tuned" if tuned else "default"},
    }


@dataclass
class ConfiguredRun:
    """A run's objects, built and not started, and the settings they came from."""

    method: UnlearningMethod
    datamodule: UnlearningDataModule
    original: OriginalRecipe | None
    trainer_settings: dict[str, Any]  # the Trainer's arguments, callbacks instantiated
    settings: Namespace

    def callback_settings(self) -> dict[str, Any]:
        return callback_settings(self.settings, self.original)

    def trainer(self, callbacks: list[L.Callback] = ()) -> L.Trainer:
        """A new Trainer of the configured settings, with the config's callbacks and these."""
        configured = self.trainer_settings.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        return L.Trainer(**(self.trainer_settings | {"callbacks": [*configured, *callbacks]}))


def configured_run(args: list[str]) -> ConfiguredRun:
    """The run of `camu fit <args>`: a missing or malformed config is one line naming its path."""
    check_config_options(args)
    parser = run_parser()
    settings = parser.parse_args(args)
    if settings.seed_everything is not False:  # LightningCLI seeds before it builds anything
        settings.seed_everything = L.seed_everything(
            None if settings.seed_everything is True else settings.seed_everything, workers=True
        )
    built = parser.instantiate_classes(settings)
    return ConfiguredRun(built.model, built.data, built.original, dict(built.trainer), settings)
