"""Every YAML under configs/ parses, prints a complete config, and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from camu_lightning.cli import CamuCLI, main
from camu_lightning.data import UnlearningDataModule
from camu_lightning.methods import UnlearningMethod

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_is_a_random_and_a_class_config_per_dataset() -> None:
    names = {path.stem for path in CONFIGS}
    for dataset in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        assert {f"{dataset}_camu", f"{dataset}_camu_class"} <= names
    assert "demo_camu" in names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_print_config_yields_a_complete_config(config: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "camu_lightning.methods.CaMU"
    assert printed["seed_everything"] == 0  # data.split_seed is linked to it, so not printed
    assert {"epochs", "lr", "seed"} <= set(printed["original"])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_config_instantiates(config: Path, tiny_npz: Path, tiny_rgb_npz: Path, tmp_path: Path) -> None:
    dataset, classes = (tiny_rgb_npz, 4) if "cifar" in config.stem else (tiny_npz, 3)
    cli = CamuCLI(
        UnlearningMethod,
        UnlearningDataModule,
        subclass_mode_model=True,
        auto_configure_optimizers=False,
        run=False,
        args=["--config", str(config), "--data.dataset", str(dataset), "--trainer.default_root_dir", str(tmp_path)],
    )
    assert cli.model.hparams.batch_size == 32 and cli.datamodule.hparams.split_seed == 0
    inputs = cli.datamodule.pipeline.eval(cli.datamodule.arrays.x_test[:2])
    assert cli.model.network(inputs)[0].shape == (2, classes)
