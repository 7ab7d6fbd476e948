"""On a CUDA device (`make gpu-check` runs these; deselected elsewhere): state that lives on the run's device."""

from __future__ import annotations

import pytest
import torch

from camu_lightning.methods import SISA, Unroll
from camu_lightning.models import CNN
from tests.conftest import datamodule_for
from tests.test_methods import QUIET_TRAINER

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
ON_GPU = QUIET_TRAINER | {"accelerator": "gpu", "devices": 1}


def test_unroll_records_its_sum_on_the_gpu_and_it_equals_the_cpu_recording(tiny_npz) -> None:
    datamodule = datamodule_for(tiny_npz)
    original = CNN(3, datamodule.input_shape).state_dict()
    states = {}
    for name, settings in (("cpu", QUIET_TRAINER), ("gpu", ON_GPU)):
        method = Unroll(CNN, 3, datamodule.input_shape, seed=0, lr=0.01, batch_size=8)
        method.load_original(original)  # both record from the same weights (the seed does not draw the init)
        states[name] = method.create_training_state(datamodule, settings)
    for key, value in states["cpu"]["added_back"].items():
        assert torch.allclose(value, states["gpu"]["added_back"][key], atol=1e-5), key


def test_sisa_stages_train_on_the_gpu_and_resume_there(tiny_npz) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = SISA(
        CNN, 3, datamodule.input_shape, seed=0, num_shards=2, num_slices=2, epochs=2, lr=1e-3, weight_decay=1e-4,
        batch_size=8, aggregation="mean_softmax", train_rows=datamodule.train_rows,
    )  # fmt: skip
    method.to("cuda")
    state = method.create_training_state(datamodule, ON_GPU)
    assert all(p.device.type == "cuda" for p in method.network.parameters())  # back on the run's device
    assert all(t.device.type == "cpu" for t in state["0/1"]["model"].values())  # checkpoints on the host
    assert state["0/0"]["optimizer"]["state"][0]["step"] < state["0/1"]["optimizer"]["state"][0]["step"]
