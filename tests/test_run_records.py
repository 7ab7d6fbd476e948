"""What a run records of where it started and what it cost: the digest of the weights it started from (the
original, or the training-time state), and its CPU seconds and threads beside its wall time."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from camu_lightning import UnlearningDataModule, unlearn
from camu_lightning.cache import state_digest, weights_digest
from camu_lightning.models import WithEmbedding
from tests.test_api import method_settings

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


def tiny_data() -> UnlearningDataModule:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(48, 1, 6, 6, generator=generator)
    labels = torch.arange(48) % 3
    return UnlearningDataModule(
        train=TensorDataset(images[:36], labels[:36]), test=TensorDataset(images[36:], labels[36:]),
        forget_fraction=0.25, mia_attack_size=4,
    )  # fmt: skip


def run(name: str, model: nn.Module, retrain: dict | None = None) -> dict:
    method_class, settings = method_settings(name)
    data = tiny_data()
    method = method_class(network=model, seed=0, **data.links(method_class), **settings)
    return unlearn(method, data, L.Trainer(max_epochs=1, **QUIET), retrain=retrain, verbose=False)


def test_every_run_from_the_original_names_its_digest_and_a_retrain_none() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 3))
    expected = weights_digest(WithEmbedding(model).state_dict())  # the weights as handed over, before any step
    finetune, ngrad = run("finetune", copy.deepcopy(model)), run("ngrad", copy.deepcopy(model))  # unlearned in place
    assert finetune["original_digest"] == ngrad["original_digest"] == expected
    assert "original_digest" not in run("retrain", model)  # it starts afresh, from no original


def test_a_method_with_training_time_state_names_that_states_digest() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 3))
    first, second = run("sisa", copy.deepcopy(model)), run("sisa", copy.deepcopy(model))
    assert len(first["state_digest"]) == 64 and first["state_digest"] == second["state_digest"]  # deterministic
    assert state_digest({"a": [torch.ones(2)], "n": 3}) != state_digest({"a": [torch.ones(2)], "n": 4})


def test_a_run_records_its_cpu_seconds_and_threads_and_rte_from_them() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 3))
    retrain = run("retrain", model)
    finetune = run("finetune", model, retrain)
    for results in (retrain, finetune):
        assert results["time_unlearn_cpu_s"] > 0 and results["unlearn_device"] == "cpu"
        assert results["unlearn_threads"] == torch.get_num_threads()
    assert finetune["rte_cpu"] == pytest.approx(retrain["time_unlearn_cpu_s"] / finetune["time_unlearn_cpu_s"])
    assert finetune["rte"] == pytest.approx(retrain["time_unlearn_s"] / finetune["time_unlearn_s"])
