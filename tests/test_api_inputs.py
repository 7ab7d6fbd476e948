"""The Python API refuses bad input before any work, each with one line naming the value and the fix: labels,
dataset items, the model's output and dtype; and it takes the normalisation a user's model was trained with."""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from camu_lightning import UnlearningDataModule, unlearn
from camu_lightning.commands.score import main as score_main
from camu_lightning.models import OutputAt
from tests.test_api import method_settings

REPO = Path(__file__).resolve().parents[1]
QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


def images(count: int, seed: int) -> torch.Tensor:
    """ToTensor-scale (float, [0, 1]) one-channel 6x6 images."""
    return torch.rand(count, 1, 6, 6, generator=torch.Generator().manual_seed(seed))


def labels(count: int) -> torch.Tensor:
    return torch.arange(count) % 3


def data(train_labels: torch.Tensor | None = None, **settings) -> UnlearningDataModule:
    train_labels = labels(24) if train_labels is None else train_labels
    train = TensorDataset(images(24, 0), train_labels)
    test = TensorDataset(images(12, 1), labels(12))
    return UnlearningDataModule(train=train, test=test, forget_fraction=0.25, mia_attack_size=4, **settings)


def mlp(outputs: int = 3) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, outputs))


def run(model: nn.Module, datamodule: UnlearningDataModule) -> tuple[dict, L.Trainer]:
    trainer = L.Trainer(max_epochs=1, **QUIET)
    finetune, settings = method_settings("finetune")  # MNIST's config
    method = finetune(network=model, seed=0, **datamodule.links(finetune), **settings)
    return unlearn(method, datamodule, trainer, verbose=False), trainer


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_labels_are_whole_numbers_within_the_declared_classes() -> None:
    whole = data(labels(24).double())  # 0.0, 1.0, 2.0: whole numbers are taken as they are
    assert torch.equal(whole.arrays.y_train, labels(24)) and whole.arrays.y_train.dtype == torch.int64
    fractional = labels(24).double()
    fractional[5] = 3.5  # was truncated to 3 without a word
    with pytest.raises(ValueError) as error:
        data(fractional).arrays  # noqa: B018
    assert one_line(error) == "data.train: label 3.5 is not a whole number; labels must be class indices 0..C-1"

    class Declared(TensorDataset):
        classes = ["a", "b", "c"]  # an ImageFolder-style declaration of 3 classes

    stray = labels(24)
    stray[0] = 3  # equal to the class count: failed deep in the attacks ("Target 3 is out of bounds")
    module = UnlearningDataModule(
        train=Declared(images(24, 0), stray), test=TensorDataset(images(12, 1), labels(12)), forget_fraction=0.25
    )
    with pytest.raises(ValueError) as error:
        module.arrays  # noqa: B018
    assert "holds label 3; labels must be 0..2 for the 3 classes" in one_line(error)


def test_a_dataset_of_dicts_is_named_by_its_keys() -> None:
    class Records(Dataset):
        def __len__(self) -> int:
            return 24

        def __getitem__(self, index: int) -> dict:
            return {"image": images(1, index)[0], "label": int(labels(24)[index])}

    module = UnlearningDataModule(train=Records(), test=Records(), forget_fraction=0.25)
    with pytest.raises(ValueError) as error:  # was: invalid literal for int() with base 10: 'label'
        module.arrays  # noqa: B018
    assert one_line(error).startswith("data.train yields dicts (keys: image, label); give the data module (image, ")


class TwoHeads(nn.Module):
    """A model whose forward returns (logits, auxiliary logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp()
        self.aux = nn.Linear(36, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body(x), self.aux(x.flatten(1))


def test_a_model_returning_a_tuple_is_refused_and_output_at_takes_its_logits() -> None:
    with pytest.raises(ValueError) as error:  # was: 'tuple' object has no attribute 'argmax'
        run(TwoHeads(), data())
    assert "returns a tuple of 2, not the logits" in one_line(error) and "OutputAt(i)" in str(error.value)
    results, trainer = run(nn.Sequential(TwoHeads(), OutputAt(0)), data())
    assert trainer.global_step > 0 and 0 <= results["acc_test"] <= 100


@pytest.mark.parametrize("outputs", [2, 4])
def test_a_model_whose_output_count_is_not_the_class_count_is_refused_before_any_work(outputs: int) -> None:
    model = mlp(outputs)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ValueError) as error:  # 4 outputs: refused only after an epoch, if an extra class was predicted
        run(model, data())
    assert one_line(error).startswith(f"the model returns {outputs} logits per image but the data holds 3 classes")
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_model_not_in_float32_is_refused_with_the_conversion(dtype: torch.dtype) -> None:
    with pytest.raises(ValueError) as error:  # was: mat1 and mat2 must have the same dtype
        run(mlp().to(dtype), data())
    name = str(dtype).removeprefix("torch.")
    assert one_line(error) == (
        f"the network's parameters are {name}; the suite trains float32 networks: convert it with model.float() "
        "(trainer.precision sets mixed precision)"
    )


def test_the_data_module_normalises_with_the_users_mean_and_std() -> None:
    mean, std = [0.4], [0.2]
    module = data(mean=mean, std=std)
    rows = module.eval_sets["test"].__getitems__(list(range(12)))["x"]
    uint8 = np.round(images(12, 1).numpy() * 255)  # the data module keeps uint8 pixels, as ToTensor's inverse
    np.testing.assert_allclose(rows.numpy(), (uint8 / 255 - 0.4) / 0.2, rtol=1e-5, atol=1e-5)
    assert module.pixel_mean == (0.4,) and module.pixel_std == (0.2,)
    assert module.pipeline_identity() != data().pipeline_identity() == "plain"  # cache keys tell them apart

    normalised = TensorDataset((images(24, 0) - 0.4) / 0.2, labels(24))  # a Normalize transform applied
    module = UnlearningDataModule(train=normalised, test=normalised, forget_fraction=0.25)
    with pytest.raises(ValueError) as error:
        module.arrays  # noqa: B018
    assert "drop the Normalize transform and give its mean and std as data.mean and data.std" in one_line(error)

    for settings, message in (
        ({"mean": mean}, "set both data.mean and data.std"),
        ({"mean": [0.4, 0.4], "std": std}, "one value per channel each, got [0.4, 0.4] and [0.2]"),
        ({"mean": mean, "std": [0.0]}, "data.std must be > 0 for every channel, got [0.0]"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            data(**settings)


@pytest.mark.parametrize("option", ["--config", "--retrain_config"])
def test_camu_score_names_a_missing_config_before_writing_anything(
    option: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    configs = {"--config": str(REPO / "configs" / "mnist_finetune.yaml"), option: str(tmp_path / "missing.yaml")}
    with pytest.raises(SystemExit) as stop:  # was `config: invalid value`, after writing a forget set
        score_main([*(part for pair in configs.items() for part in pair), "--data.dataset", "mnist5k"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: config {tmp_path / 'missing.yaml'} does not exist"
    assert list(tmp_path.iterdir()) == []


def test_a_method_takes_its_settings_from_a_config_with_the_model_on_top() -> None:
    from camu_lightning.methods import CaMU, NGrad
    from camu_lightning.utils.config_files import read_config

    datamodule = data()
    method = CaMU.from_config(REPO / "configs" / "mnist_camu.yaml", network=mlp(), seed=0, **datamodule.links(CaMU))
    init_args = read_config(REPO / "configs" / "mnist_camu.yaml")["model"]["init_args"]
    assert {key: method.hparams[key] for key in init_args if key != "network"} == {
        key: value for key, value in init_args.items() if key != "network"
    }
    results = unlearn(method, datamodule, L.Trainer(max_epochs=1, **QUIET), verbose=False)
    assert 0 <= results["acc_forget"] <= 100
    with pytest.raises(ValueError, match=r"mnist_camu.yaml configures CaMU, not NGrad: give a NGrad config"):
        NGrad.from_config(REPO / "configs" / "mnist_camu.yaml", network=mlp(), seed=0)
