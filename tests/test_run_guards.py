"""The run as callbacks and its guards: what is refused before any work, the train mode a network is unlearned in,
Ctrl-C's status, and a plain `trainer.fit` with the callbacks giving `unlearn`'s numbers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from camu_lightning import UnlearningDataModule, run_callbacks, unlearn
from tests.conftest import make_image_npz
from tests.test_api import METRICS, QUIET, method_settings


def tiny_data(tmp_path: Path, **overrides) -> UnlearningDataModule:
    dataset = make_image_npz(tmp_path / "tiny.npz", num_train=40, num_test=20)
    settings = {"dataset": str(dataset), "forget_fraction": 0.25, "mia_attack_size": 8, "eval_batch_size": 16}
    return UnlearningDataModule(**(settings | overrides))


def plain_model(batch_norm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(64, 16), *([nn.BatchNorm1d(16)] if batch_norm else []), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(16, 3))


def method(name: str, model: nn.Module, data: UnlearningDataModule, seed: int = 0):
    method_class, init = method_settings(name)
    return method_class(network=model, seed=seed, **data.links(method_class), **init)


def trainer(tmp_path: Path, epochs: int = 1, **overrides) -> L.Trainer:
    return L.Trainer(**({"max_epochs": epochs, "default_root_dir": tmp_path, **QUIET} | overrides))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()}


def test_a_trainer_that_has_trained_already_is_refused_before_any_work(tmp_path: Path) -> None:
    """The everyday pattern: the Trainer that trained the original, handed to `unlearn`, would run no step (its
    max_epochs is reached) and score the untouched original as the result."""
    data, model = tiny_data(tmp_path), plain_model()
    used = trainer(tmp_path)
    unlearn(method("finetune", model, data), data, used, verbose=False)  # its one epoch is spent
    before = weights(model)
    with pytest.raises(ValueError, match=r"has trained already \(epoch 1, step \d+\) and would run no CaMU step"):
        unlearn(method("camu", model, data), data, used, verbose=False)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_zero_training_batches_are_refused_for_a_method_that_trains(tmp_path: Path) -> None:
    data, model = tiny_data(tmp_path), plain_model()
    with pytest.raises(ValueError, match="limit_train_batches is 0, so NGrad would run no unlearning step"):
        unlearn(method("ngrad", model, data), data, trainer(tmp_path, limit_train_batches=0), verbose=False)
    ssd = unlearn(method("ssd", model, data), data, trainer(tmp_path, limit_train_batches=0), verbose=False)
    assert ssd["status"] == "ok"  # a one-shot edit asks for no training stream: nothing to refuse


@pytest.mark.parametrize(
    ("change", "named"),
    [({"seed": 1}, "seed"), ({"forget_fraction": 0.5}, "split"), ({"mia_attack_size": 8}, None)],
)
def test_a_retrain_of_another_run_is_refused_before_any_work_naming_what_differs(
    tmp_path: Path, change: dict, named: str | None
) -> None:
    data = tiny_data(tmp_path)
    retrain = unlearn(method("retrain", plain_model(), data), data, trainer(tmp_path), verbose=False)
    seed = change.get("seed", 0)
    other = tiny_data(tmp_path, **{key: value for key, value in change.items() if key != "seed"})
    model = plain_model()
    camu = method("camu", model, other, seed=seed)
    before = weights(model)
    if named is None:  # same data, network, split and seed: it pairs
        assert "avg_gap" in unlearn(camu, other, trainer(tmp_path), retrain=retrain, verbose=False)
        return
    with pytest.raises(ValueError, match=f"retrain is a Retrain of another {named} than this run"):
        unlearn(camu, other, trainer(tmp_path), retrain=retrain, verbose=False)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    other_network = method("camu", nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), data)
    with pytest.raises(ValueError, match="another network than this run"):
        unlearn(other_network, data, trainer(tmp_path), retrain=retrain, verbose=False)


def test_a_network_handed_over_in_eval_mode_is_unlearned_in_train_mode_and_frozen_copies_stay_silent(
    tmp_path: Path,
) -> None:
    class Modes(L.Callback):
        seen: list[bool] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            Modes.seen.append(pl_module.network.training)
            Modes.frozen = pl_module.original.network.training

    data, model = tiny_data(tmp_path), plain_model(batch_norm=True)
    model.eval()  # as any evaluation function leaves it
    running_mean = model[2].running_mean.clone()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unlearn(method("camu", model, data), data, trainer(tmp_path, callbacks=[Modes()]), verbose=False)
    assert Modes.seen and all(Modes.seen) and Modes.frozen is False
    assert not torch.equal(model[2].running_mean, running_mean)  # batch norm learnt batch statistics
    assert not [str(w.message) for w in caught if "eval mode" in str(w.message)]


def test_ctrl_c_in_the_api_leaves_the_interrupted_status_where_results_go(tmp_path: Path) -> None:
    class CtrlC(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            raise KeyboardInterrupt

    data = tiny_data(tmp_path)
    camu = method("camu", plain_model(), data)
    with pytest.raises(SystemExit):  # Lightning ends the process on Ctrl-C, as `camu fit` does (status 1)
        unlearn(camu, data, trainer(tmp_path, callbacks=[CtrlC()]), results_dir=tmp_path / "run", verbose=False)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "interrupted"


def test_trainer_fit_with_the_run_callbacks_gives_unlearns_numbers(tmp_path: Path) -> None:
    data = tiny_data(tmp_path)
    retrain = unlearn(method("retrain", plain_model(), data), data, trainer(tmp_path), verbose=False)
    L.seed_everything(0)
    through_unlearn = unlearn(method("camu", plain_model(), data), data, trainer(tmp_path, 2), retrain=retrain)
    L.seed_everything(0)
    camu = method("camu", plain_model(), data)
    own = trainer(tmp_path, 2, callbacks=run_callbacks(retrain=retrain, results_dir=tmp_path / "own"))
    own.validate(camu, datamodule=data, verbose=False)
    own.fit(camu, datamodule=data)
    own.test(camu, datamodule=data, verbose=False)
    written = json.loads((tmp_path / "own" / "results.json").read_text())
    compared = [*METRICS, *(f"original_{key}" for key in METRICS), "avg_gap", "tow", "split_key"]
    assert {key: written[key] for key in compared} == {key: through_unlearn[key] for key in compared}
