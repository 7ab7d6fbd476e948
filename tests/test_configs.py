"""Every YAML under configs/ parses, prints a complete config, and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from camu_lightning.cli import main
from camu_lightning.methods import UnlearningMethod
from camu_lightning.utils.config_files import read_config
from tests.conftest import instantiated_cli

# The package's own methods (a test module may define one of its own: tests/test_api.py's).
PACKAGE_METHODS = [m for m in UnlearningMethod.__subclasses__() if m.__module__.startswith("camu_lightning.")]

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_every_method_has_a_config_per_dataset() -> None:
    names = {path.stem for path in CONFIGS}
    for dataset in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        assert f"{dataset}_camu_class" in names
        for method in PACKAGE_METHODS:
            paths = [p for p in CONFIGS if p.stem.startswith(f"{dataset}_") and class_path(p) == method.__name__]
            assert paths, f"no configs/{dataset}_*.yaml for {method.__name__}"
    assert "demo_camu" in names


def class_path(config: Path) -> str:
    return read_config(config)["model"]["class_path"].rsplit(".", 1)[-1]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_print_config_yields_a_complete_config(config: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == f"camu_lightning.methods.{class_path(config)}"
    assert printed["seed_everything"] == 0  # data.split_seed is linked to it, so not printed
    assert {"epochs", "lr", "seed"} <= set(printed["original"])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_config_instantiates(config: Path, tiny_npz: Path, tiny_rgb_npz: Path, tmp_path: Path) -> None:
    dataset, classes = (tiny_rgb_npz, 4) if "cifar" in config.stem else (tiny_npz, 3)
    cli = instantiated_cli(
        "--config", str(config), "--data.dataset", str(dataset), "--trainer.default_root_dir", str(tmp_path)
    )
    assert type(cli.model).__name__ == class_path(config) and cli.datamodule.hparams.split_seed == 0
    inputs = cli.datamodule.pipeline.eval(cli.datamodule.arrays.x_test[:2])
    assert cli.model.network(inputs)[0].shape == (2, classes)


def test_no_python_default_changes_results_so_the_configs_are_the_single_source() -> None:
    import dataclasses
    import inspect

    from camu_lightning.models import ResNet18
    from camu_lightning.original import OriginalRecipe

    linked = {"pixel_mean", "pixel_std", "train_rows", "forget_rows"}  # set by the CLI from the data module
    for method in PACKAGE_METHODS:
        parameters = inspect.signature(method.__init__).parameters.values()
        defaults = {p.name for p in parameters if p.default is not inspect.Parameter.empty}
        assert defaults <= linked, f"{method.__name__} defaults {sorted(defaults - linked)} in Python"
    recipe_defaults = {f.name for f in dataclasses.fields(OriginalRecipe) if f.default is not dataclasses.MISSING}
    assert recipe_defaults == {"checkpoint"}
    assert inspect.signature(ResNet18).parameters["stem"].default is inspect.Parameter.empty
