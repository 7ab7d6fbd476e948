"""Lightning's DDP on two CPU processes (gloo): every method keeps its ranks in step, evaluation counts each row
once and the attack sees the rows of one process, in the same order."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy

from camu_lightning.metrics import ATTACK_KEYS
from camu_lightning.run.original_evaluation import logged
from tests.conftest import datamodule_for, fit, instantiated_cli, make_image_npz
from tests.test_camu import make_camu
from tests.test_cli import REPO, expect_one_line_error, run_camu
from tests.test_methods import METHODS, mnist_config

# Every distributable method runs under DDP in `make test-all`; the fast suite keeps one of each kind of stream and
# optimisation: CaMU (two optimizers, tuples), SCRUB (forget-then-remain parts) and SalUn (masked steps).
FAST_DDP = ("CaMU", "SCRUB", "SalUn")
DISTRIBUTABLE = [
    pytest.param(method, marks=() if method.__name__ in FAST_DDP else pytest.mark.slow, id=method.__name__)
    for method in METHODS
    if method.distributable
]


def ddp_trainer(tmp_path: Path, **overrides) -> L.Trainer:
    # find_unused_parameters: CaMU's representation step never reaches the head (fc2); with zero gradients instead
    # of none, Adam's weight decay would move the head in that step and change the method.
    settings = dict(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(start_method="spawn", find_unused_parameters=True),
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
    )
    return L.Trainer(**(settings | overrides))


class RankChecks(L.Callback):
    """Runs inside every rank: the ranks' weights agree after training, and rank 0 saves the test metrics."""

    def on_train_end(self, trainer, pl_module):
        weights = torch.cat([p.detach().flatten() for p in pl_module.network.parameters()])
        per_rank = [torch.zeros_like(weights), torch.zeros_like(weights)]
        dist.all_gather(per_rank, weights)
        assert torch.equal(per_rank[0], per_rank[1]), "the ranks' weights differ"
        assert not torch.equal(weights, self.start), "training did not change the weights"

    def on_fit_start(self, trainer, pl_module):
        self.start = torch.cat([p.detach().flatten().clone() for p in pl_module.network.parameters()])

    def on_test_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            torch.save(logged(trainer, "test"), Path(trainer.default_root_dir) / "metrics.pt")


def test_ddp_evaluation_counts_each_row_once_and_the_attack_equals_one_process(tmp_path) -> None:
    # 62 training rows, 13 forgotten: slices of 49 / 13 / 31 rows, none divisible by 2 ranks, so padding happens.
    dataset = make_image_npz(tmp_path / "odd.npz", num_train=62, num_test=31)
    datamodule = datamodule_for(dataset, forget_fraction=0.21, eval_batch_size=8)
    assert (len(datamodule.split.remain), len(datamodule.split.forget)) == (49, 13)
    method = make_camu(batch_size=3)
    trainer = ddp_trainer(tmp_path, callbacks=[RankChecks()])
    fit(trainer, method, datamodule)
    trainer.test(method, datamodule)
    distributed = torch.load(tmp_path / "metrics.pt", weights_only=True)
    # The same weights evaluated in one process: every metric, the attack included, must match exactly.
    single = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    single.test(method, datamodule, verbose=False)
    assert distributed == logged(single, "test")
    assert set(distributed) == {"acc_remain", "acc_forget", "acc_test", "mia", *ATTACK_KEYS}


@pytest.mark.slow  # 10 s of DDP processes per method (make test-all); the evaluation's DDP test stays in make test
@pytest.mark.parametrize("method", DISTRIBUTABLE)
def test_every_distributable_method_trains_under_ddp_with_ranks_in_step(method, tmp_path, tiny_npz) -> None:
    cli = instantiated_cli("--config", str(REPO / mnist_config(method)), "--data.dataset", str(tiny_npz))
    # The first epoch of every stream, cut short: odd batch counts per rank, SCRUB's forget and remain parts.
    trainer = ddp_trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[RankChecks()])
    fit(trainer, cli.model, cli.datamodule)


@pytest.mark.parametrize("method", [m for m in METHODS if not m.distributable], ids=lambda cls: cls.__name__)
def test_methods_that_cannot_be_distributed_are_refused_on_two_devices(method, tmp_path, tiny_npz, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_camu(
            tmp_path,
            tiny_npz,
            *("--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"),
            *("--trainer.max_epochs", "1"),
            config=mnist_config(method),
        )
    assert exit_info.value.code == 2
    expect_one_line_error(capsys, f"{method.__name__} runs on one device only: set trainer.devices 1")
    assert not list(tmp_path.glob("**/results.json")) and not list(tmp_path.glob("cache/**/*.pt"))


def test_a_spawning_strategy_is_refused_because_its_ranks_results_never_return(tmp_path, tiny_npz, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_camu(
            tmp_path,
            tiny_npz,
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            "ddp_spawn",
        )
    assert exit_info.value.code == 2
    expect_one_line_error(capsys, "trainer.strategy must start each rank as a process of its own")
    assert not list(tmp_path.glob("**/results.json")) and not list(tmp_path.glob("cache/**/*.pt"))
