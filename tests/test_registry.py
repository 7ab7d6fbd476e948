"""Every registered method through the real `camu fit`: it unlearns, logs finite losses, reloads from its checkpoint
with no extra argument, and gives the same numbers whether the cache was cold or warm."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch

from camu_lightning.methods import UnlearningMethod
from tests.conftest import make_image_npz
from tests.test_cli import run_camu
from tests.test_methods import METHODS, mnist_config

RUNS: dict[str, dict] = {}  # what RunWatch saw, per method, for the test that ran it


class RunWatch(L.Callback):
    """Records the network before unlearning (after the CLI loaded the original or the method's state), checks
    every logged training value, and saves the final checkpoint."""

    def setup(self, trainer, pl_module, stage):
        if stage == "fit":
            RUNS[type(pl_module).__name__] = {"before": clone(pl_module), "logged": []}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        logged = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("train/")}
        RUNS[type(pl_module).__name__]["logged"].append(logged)

    def on_fit_end(self, trainer, pl_module):
        path = Path(trainer.default_root_dir) / "final.ckpt"
        trainer.save_checkpoint(path)
        RUNS[type(pl_module).__name__] |= {"after": clone(pl_module), "checkpoint": path}


def clone(method: UnlearningMethod) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in method.network.state_dict().items()}


@pytest.mark.parametrize("method", METHODS, ids=lambda cls: cls.__name__)
def test_every_method_unlearns_logs_finite_losses_and_reloads_from_its_checkpoint(method, tmp_path, tiny_npz) -> None:
    name = method.__name__
    run_camu(
        tmp_path,
        tiny_npz,
        *("--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "1"),
        *("--trainer.callbacks+=tests.test_registry.RunWatch",),
        config=mnist_config(method),
    )
    run = RUNS.pop(name)
    assert run["before"].keys() == run["after"].keys()
    assert any(not torch.equal(run["before"][key], run["after"][key]) for key in run["before"]), "nothing unlearned"
    logged = [value for values in run["logged"] for value in values.values()]
    assert all(math.isfinite(value) for value in logged)
    reloaded = method.load_from_checkpoint(run["checkpoint"], weights_only=True)
    if reloaded.train_streams():  # it has a training loop
        assert logged, f"{name} logged no training value"
    assert type(reloaded) is method and reloaded.hparams.seed == 0
    assert all(torch.equal(value, reloaded.network.state_dict()[key]) for key, value in run["after"].items())


METRICS = ("acc_remain", "acc_forget", "acc_test", "mia")


@pytest.mark.parametrize(  # SISA's 5 s in make test-all
    "config", ["demo_camu", "mnist_retrain", pytest.param("mnist_sisa", marks=pytest.mark.slow), "mnist_unroll"]
)
def test_the_same_command_gives_the_same_numbers_with_a_cold_or_a_warm_cache(config, tmp_path) -> None:
    # Noisy classes, so that the metrics move with the weights (on the clean toy data every model scores 100).
    hard = make_image_npz(tmp_path / "hard.npz", num_train=120, num_test=60, noise=200, contrast=50)

    def run(cache: str) -> dict:
        overrides = ("--cache_dir", str(tmp_path / cache), "--trainer.max_epochs", "1")
        return run_camu(tmp_path, hard, *overrides, config=f"configs/{config}.yaml")

    cold = run("first")  # an empty cache: the original and the method's state are trained in this process
    warm = run("first")  # everything from the cache
    run_camu(tmp_path, hard, "--cache_dir", str(tmp_path / "second"))  # another method caches the original
    half_warm = run("second")  # the original from the cache, the method's own state trained here
    assert any(key in warm for key in ("original_source", "prepare_from_cache", "unlearned_from_cache"))
    assert cold.get("original_source") in (None, "trained") and warm.get("original_source") in (None, "cache")
    assert not cold.get("prepare_from_cache") and warm.get("prepare_from_cache") in (None, True)
    assert not half_warm.get("prepare_from_cache")
    numbers = [key for key in cold if key in METRICS or key.removeprefix("original_") in METRICS]
    assert {key: warm[key] for key in numbers} == {key: cold[key] for key in numbers}
    assert {key: half_warm[key] for key in numbers} == {key: cold[key] for key in numbers}
