"""The gap to a cached Retrain through the real CLI, then each method's defining property."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camu_lightning.cache import weights_digest
from camu_lightning.data import UnlearningDataModule
from camu_lightning.methods import (
    SCRUB,
    BoundaryExpanding,
    BoundaryShrink,
    Finetune,
    NGrad,
    Retrain,
    TeacherStudent,
    UnlearningMethod,
    Unroll,
)
from camu_lightning.methods.scrub import learning_rate_factor
from camu_lightning.models import CNN
from camu_lightning.utils.config_files import read_config
from tests.conftest import datamodule_for, fit
from tests.test_cli import REPO, run_camu

# The package's own methods (a test module may define one of its own: tests/test_api.py's).
PACKAGE_METHODS = [m for m in UnlearningMethod.__subclasses__() if m.__module__.startswith("camu_lightning.")]

METHODS = PACKAGE_METHODS
QUIET_TRAINER = dict(
    accelerator="cpu",
    devices=1,
    logger=False,
    enable_progress_bar=False,
    enable_checkpointing=False,
    enable_model_summary=False,
    precision="32-true",
)


def mnist_config(method: type) -> str:
    for path in sorted((REPO / "configs").glob("mnist_*.yaml")):
        if read_config(path)["model"]["class_path"].endswith(f".{method.__name__}"):
            return str(path.relative_to(REPO))
    raise AssertionError(f"no configs/mnist_*.yaml runs {method.__name__}")


def test_other_methods_report_their_gap_to_a_cached_retrain(tmp_path: Path, tiny_npz: Path) -> None:
    retrain = run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", "1", config="configs/mnist_retrain.yaml")
    assert "unlearned_from_cache" not in retrain
    again = run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", "1", config="configs/mnist_retrain.yaml")
    assert again["unlearned_from_cache"] is True and again["time_unlearn_s"] == retrain["time_unlearn_s"]
    assert again["acc_test"] == retrain["acc_test"]
    camu = run_camu(tmp_path, tiny_npz)
    for key in ("acc_remain", "acc_forget", "acc_test", "mia"):
        assert camu[f"gap_{key}"] == pytest.approx(camu[key] - retrain[key])
    expected = np.mean([abs(camu[f"gap_{key}"]) for key in ("acc_remain", "acc_forget", "acc_test", "mia")])
    assert camu["avg_gap"] == pytest.approx(expected)
    assert camu["rte"] == pytest.approx(retrain["time_unlearn_s"] / camu["time_unlearn_s"])


# ----------------------------------------------------------------------------- shared helpers
class Linear(nn.Module):
    """logits = W x + b on the flattened input; the embedding is the input itself."""

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.fc2 = nn.Linear(int(np.prod(input_shape)), num_classes)

    def forward(self, x):
        flat = x.flatten(1)
        return self.fc2(flat), flat


def blobs_npz(path: Path, per_class: int = 40) -> Path:
    """Three well-separated Gaussian blobs as 1x1x2 'images'."""
    rng = np.random.default_rng(0)
    centres = np.array([[40, 40], [200, 60], [120, 210]])

    def draw(count):
        labels = np.repeat(np.arange(3), count)
        pixels = np.clip(centres[labels] + rng.normal(0, 8, (len(labels), 2)), 0, 255)
        return pixels.reshape(-1, 1, 2).astype(np.uint8), labels.astype(np.uint8)

    x_train, y_train = draw(per_class)
    x_test, y_test = draw(per_class // 2)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def fitted_linear(datamodule: UnlearningDataModule) -> dict[str, torch.Tensor]:
    """A linear model trained to 100 % on the blobs: the original."""
    torch.manual_seed(0)
    network = Linear(3, datamodule.input_shape)
    x = datamodule.pipeline.eval(datamodule.arrays.x_train)
    y = datamodule.arrays.y_train
    optimizer = torch.optim.Adam(network.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        F.cross_entropy(network(x)[0], y).backward()
        optimizer.step()
    assert (network(x)[0].argmax(1) == y).all()
    return network.state_dict()


def forget_ce(method: UnlearningMethod, datamodule: UnlearningDataModule) -> float:
    rows = torch.from_numpy(datamodule.split.forget)
    x = datamodule.pipeline.eval(datamodule.arrays.x_train[rows])
    with torch.no_grad():
        return F.cross_entropy(method.evaluation_logits(x), datamodule.arrays.y_train[rows]).item()


class Recorder(L.Callback):
    """Records (epoch, stream batch) of every training batch and whether it changed the network's weights."""

    def on_train_start(self, trainer, pl_module):
        self.batches, self.stepped = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(
            (trainer.current_epoch, {k: {n: t.clone() for n, t in v.items()} for k, v in batch.items()})
        )
        self.weights = [p.detach().clone() for p in pl_module.network.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        after = list(pl_module.network.parameters())
        self.stepped.append(any(not torch.equal(a, b) for a, b in zip(after, self.weights, strict=True)))


# ----------------------------------------------------------------------------- defining properties
@pytest.mark.parametrize("mode", ["neggrad_plus", "ascent"])
def test_ngrad_raises_the_forget_loss_on_separable_blobs(mode, tmp_path, make_trainer) -> None:
    # Forgetting one blob: remain descent cannot undo the ascent (with a random forget set it would, the blobs
    # being the same on both sides).
    datamodule = datamodule_for(blobs_npz(tmp_path / "blobs.npz"), forget_fraction=None, forget_classes=[0])
    method = NGrad(
        Linear,
        3,
        datamodule.input_shape,
        seed=0,
        mode=mode,
        lr=1.0,
        alpha=0.95,
        remain_batch_size=16,
        forget_batch_size=8,
        clip_norm=5.0,
        l2_to_init=0.0,
        momentum=0.0,
        weight_decay=0.0,
    )
    method.load_original(fitted_linear(datamodule))
    before = forget_ce(method, datamodule)
    fit(make_trainer(max_steps=-1, max_epochs=5, limit_val_batches=0), method, datamodule)
    assert forget_ce(method, datamodule) > 1.5 * before


def test_ngrad_divergence_exits_non_zero_and_marks_its_results_diverged(tmp_path, tiny_npz, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_camu(
            tmp_path,
            tiny_npz,
            "--model.init_args.mode",
            "ascent",
            "--model.init_args.lr",
            "1e30",
            "--trainer.max_epochs",
            "3",
            config="configs/mnist_ngrad.yaml",
        )
    assert exit_info.value.code == 2
    assert "NGrad diverged at epoch" in capsys.readouterr().err
    (written,) = tmp_path.glob("**/results.json")  # the outcome, marked, with no metric to take for a success
    results = json.loads(written.read_text())
    assert results["status"] == "diverged" and results["method"] == "NGrad" and "acc_forget" not in results
    assert results["error"].startswith(f"NGrad diverged at epoch {results['epoch']}, step {results['global_step']}:")
    (original,) = (tmp_path / "cache" / "original").glob("*.pt")  # where it started, as a finished run names it
    assert results["original_digest"] == weights_digest(torch.load(original, weights_only=True)["state_dict"])


def test_boundary_shrink_targets_are_fgsm_neighbours_never_the_true_label(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = BoundaryShrink(CNN, 3, datamodule.input_shape, seed=0, epsilon=0.1, lr=1e-5, momentum=0.9, batch_size=4)
    method.load_original(method.network.state_dict())
    original = {k: v.clone() for k, v in method.original.state_dict().items()}
    fit(make_trainer(max_steps=-1, max_epochs=1, limit_val_batches=0), method, datamodule)
    rows = torch.from_numpy(datamodule.split.forget)
    x, y = datamodule.pipeline.eval(datamodule.arrays.x_train[rows]), datamodule.arrays.y_train[rows]
    # Independent FGSM: gradient of the frozen original's CE w.r.t. the pixels, one signed step, clamp, round.
    frozen = method.original.network
    pixels = x.clone().requires_grad_(True)
    F.cross_entropy(frozen(pixels)[0], y).backward()
    x_adv = torch.round(torch.clamp(x + 0.1 * pixels.grad.sign(), 0, 1) * 255) / 255
    logits = frozen(x_adv)[0].detach()
    attacked = logits.argmax(1)
    runner_up = logits.clone()
    runner_up[torch.arange(len(y)), y] = -math.inf
    expected = torch.where(attacked != y, attacked, runner_up.argmax(1))
    assert torch.equal(method.targets, expected) and (method.targets != y).all()
    searched_adv, _ = method.neighbour_search(x, y)
    assert searched_adv.min() >= 0 and searched_adv.max() <= 1
    assert (searched_adv - x).abs().max() <= 0.1 + 1 / 510 + 1e-6
    assert all(torch.equal(v, method.original.state_dict()[k]) for k, v in original.items())


def test_boundary_expanding_trains_a_shadow_class_and_returns_the_original_shape(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = BoundaryExpanding(CNN, 3, datamodule.input_shape, seed=0, lr=1e-3, momentum=0.9, batch_size=4)
    method.load_original(method.network.state_dict())
    shapes = {k: v.shape for k, v in method.network.state_dict().items()}

    class Check(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.wide = pl_module.network.fc2[-1].weight.detach().clone()
            self.bias = pl_module.network.fc2[-1].bias.detach().clone()
            assert pl_module.network(batch["forget_fixed"]["x"])[0].shape[1] == 4

    check = Check()
    fit(make_trainer(max_steps=-1, max_epochs=1, limit_val_batches=0, callbacks=[check]), method, datamodule)
    assert {k: v.shape for k, v in method.network.state_dict().items()} == shapes
    assert torch.equal(method.network.fc2[-1].weight, check.wide[:3])
    assert torch.equal(method.network.fc2[-1].bias, check.bias[:3])
    assert method.network(torch.rand(2, 1, 8, 8))[0].shape == (2, 3)


def test_bad_teacher_targets_follow_the_flag_and_teachers_stay_frozen(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = TeacherStudent(
        CNN,
        3,
        datamodule.input_shape,
        seed=0,
        lr=1e-4,
        weight_decay=0.0,
        batch_size=8,
        temperature=2.0,
        remain_fraction=0.3,
        kl_reduction="batchmean",
    )
    method.load_original(method.network.state_dict())
    teachers = {k: v.clone() for k, v in (method.original.state_dict() | method.incompetent.state_dict()).items()}
    x, flag = torch.rand(6, 1, 8, 8), torch.tensor([1, 0, 0, 1, 1, 0])
    target = method.teacher_target(x, flag)
    incompetent = F.softmax(method.incompetent.network(x)[0] / 2.0, dim=1)
    competent = F.softmax(method.original.network(x)[0] / 2.0, dim=1)
    assert torch.equal(target[flag == 1], incompetent[flag == 1])
    assert torch.equal(target[flag == 0], competent[flag == 0])
    recorder = Recorder()
    fit(make_trainer(max_steps=-1, max_epochs=1, limit_val_batches=0, callbacks=[recorder]), method, datamodule)
    assert not method.original.network.training and not method.incompetent.network.training
    after = method.original.state_dict() | method.incompetent.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in teachers.items())
    rows = torch.cat([batch["flagged_mixture"]["x"] for _, batch in recorder.batches])
    flags = torch.cat([batch["flagged_mixture"]["flag"] for _, batch in recorder.batches])
    split = datamodule.split
    assert int(flags.sum()) == len(split.forget) and int((flags == 0).sum()) == math.floor(0.3 * len(split.remain))
    assert len(torch.unique(rows, dim=0)) == len(rows)  # no sample twice in an epoch


def test_scrub_max_steps_only_in_the_first_msteps_epochs_then_min_steps(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = SCRUB(
        CNN,
        3,
        datamodule.input_shape,
        seed=0,
        optimizer="sgd",
        lr=1e-2,
        momentum=0.9,
        weight_decay=5e-4,
        msteps=2,
        temperature=4.0,
        ce_weight=0.99,
        kl_weight=0.001,
        decay_epochs=[1, 2],
        decay_rate=0.1,
        forget_batch_size=5,
        remain_batch_size=16,
        rewind=False,
    )
    method.load_original(method.network.state_dict())
    recorder = Recorder()
    rates = []

    class Rates(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    fit(
        make_trainer(max_steps=-1, max_epochs=3, limit_val_batches=0, callbacks=[recorder, Rates()]), method, datamodule
    )
    forget_batches, remain_batches = math.ceil(12 / 5), math.ceil(48 / 16)
    for epoch in range(3):
        kinds = [
            ("max" if bool(batch["forget_then_remain"]["is_forget"][0]) else "min", stepped)
            for (e, batch), stepped in zip(recorder.batches, recorder.stepped, strict=True)
            if e == epoch
        ]
        expected_max = [("max", True)] * forget_batches if epoch < 2 else [("max", False)] * forget_batches
        assert kinds == expected_max + [("min", True)] * remain_batches
    assert rates == pytest.approx([1e-2 * learning_rate_factor(e, [1, 2], 0.1) for e in (1, 2, 3)])
    assert rates == pytest.approx([1e-2, 1e-3, 1e-4])


def test_unroll_add_back_is_exact_for_a_loss_linear_in_the_weights(tmp_path, make_trainer) -> None:
    from camu_lightning.methods import unroll

    class LinearLoss(unroll.UnrollRecorder):
        def loss(self, logits, labels):  # -mean <W x, onehot(y)>: its gradient does not depend on W
            return -(logits * F.one_hot(labels, logits.shape[1]).to(logits.dtype)).sum(1).mean()

    datamodule = datamodule_for(blobs_npz(tmp_path / "blobs.npz", per_class=40), forget_fraction=0.2)
    torch.set_default_dtype(torch.float64)
    try:
        start = Linear(3, datamodule.input_shape).double()
        recorder = LinearLoss(start, lr=0.01, batch_size=8)
        theta_0 = {k: v.clone() for k, v in start.state_dict().items()}
        fit(make_trainer(max_steps=-1, max_epochs=1, limit_val_batches=0, precision="64-true"), recorder, datamodule)
        added = {k: theta_0_v + 0 for k, theta_0_v in theta_0.items()}
        # The same pass without the forget batches: theta_0 - lr * sum over remain batches of the mean gradient.
        rows = torch.from_numpy(datamodule.split.remain)
        x = datamodule.pipeline.eval(datamodule.arrays.x_train[rows]).flatten(1).double()
        onehot = F.one_hot(datamodule.arrays.y_train[rows], 3).double()
        added["fc2.weight"] = theta_0["fc2.weight"] + 0.01 * (onehot.T @ x) / 8
        added["fc2.bias"] = theta_0["fc2.bias"] + 0.01 * onehot.sum(0) / 8
        for name, value in recorder.network.named_parameters():
            assert torch.allclose(value + recorder.added_back[name], added[name], atol=1e-10, rtol=0)
    finally:
        torch.set_default_dtype(torch.float32)


def test_unroll_unlearning_adds_the_recorded_updates_back(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = Unroll(CNN, 3, datamodule.input_shape, seed=0, lr=0.01, batch_size=8)
    method.load_original(method.network.state_dict())
    state = method.create_training_state(datamodule, QUIET_TRAINER)
    method.load_training_state(state)
    clock = fit(make_trainer(max_epochs=1, limit_train_batches=0, limit_val_batches=0), method, datamodule)
    for name, value in method.network.named_parameters():
        assert torch.allclose(value, state["recorded"][name] + state["added_back"][name])
    assert clock.elapsed < 1.0


def test_retrain_starts_fresh_and_never_sees_a_forget_index(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    torch.manual_seed(7)
    method = Retrain(CNN, 3, datamodule.input_shape, seed=0, lr=1e-3, weight_decay=1e-4, batch_size=8)
    torch.manual_seed(7)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            method.network.state_dict().values(), CNN(3, datamodule.input_shape).state_dict().values(), strict=True
        )
    )
    assert Retrain.starts_from_original is False
    recorder = Recorder()
    fit(make_trainer(max_steps=-1, max_epochs=2, limit_val_batches=0, callbacks=[recorder]), method, datamodule)
    images = datamodule.pipeline.eval(datamodule.arrays.x_train)
    for epoch in range(2):
        seen = torch.cat([batch["remain"]["x"] for e, batch in recorder.batches if e == epoch])
        matches = [int((images == row).flatten(1).all(1).nonzero()[0]) for row in seen]
        assert sorted(matches) == sorted(datamodule.split.remain.tolist())


def test_finetune_reads_no_forget_sample(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = Finetune(
        CNN,
        3,
        datamodule.input_shape,
        seed=0,
        lr=5e-4,
        weight_decay=1e-4,
        batch_size=4,
        remain_ce_weight=0.9,
        stream="remain_sample",
        optimizer="adam",
        momentum=0.0,
    )
    recorder = Recorder()
    fit(make_trainer(max_steps=-1, max_epochs=1, limit_val_batches=0, callbacks=[recorder]), method, datamodule)
    assert {name for _, batch in recorder.batches for name in batch} == {"remain_sample"}
    assert datamodule.tuples is None and len(method.trainer.optimizers) == 1
    images = datamodule.pipeline.eval(datamodule.arrays.x_train)
    seen = torch.cat([batch["remain_sample"]["x"] for _, batch in recorder.batches])
    matches = {int((images == row).flatten(1).all(1).nonzero()[0]) for row in seen}
    assert matches <= set(datamodule.split.sample.tolist()) and not matches & set(datamodule.split.forget.tolist())


def test_sisa_retrains_exactly_the_affected_stages_of_the_affected_shards(tmp_path, tiny_npz, make_trainer) -> None:
    from camu_lightning.methods import SISA
    from camu_lightning.methods.sisa import index_hash, shard_indices, slice_end

    shards = shard_indices(60, 4, seed=0)  # 15 per shard, slices of 5: stages on [0,5), [0,10), [0,15)
    request = [int(shards[1][12]), int(shards[3][0])]  # shard 1: last slice only; shard 3: first slice
    (tmp_path / "request.json").write_text(json.dumps(request))
    datamodule = datamodule_for(tiny_npz, forget_fraction=None, forget_indices=str(tmp_path / "request.json"))
    method = SISA(
        CNN,
        3,
        datamodule.input_shape,
        seed=0,
        num_shards=4,
        num_slices=3,
        epochs=2,
        lr=1e-3,
        weight_decay=1e-4,
        batch_size=8,
        aggregation="mean_softmax",
        train_rows=datamodule.train_rows,
        forget_rows=datamodule.forget_rows,
    )
    method.load_training_state(method.create_training_state(datamodule, QUIET_TRAINER))
    assert sorted(method.trained_stages) == [(s, r) for s in range(4) for r in range(3)]
    before = {key: {k: v.clone() for k, v in entry["model"].items()} for key, entry in method.checkpoints.items()}
    fit(make_trainer(max_epochs=1, limit_train_batches=0, limit_val_batches=0), method, datamodule)
    assert sorted(method.trained_stages) == [(1, 2), (3, 0), (3, 1), (3, 2)]
    for key in ("1/0", "1/1", "0/0", "0/1", "0/2", "2/0", "2/1", "2/2"):
        assert all(torch.equal(v, method.checkpoints[key]["model"][k]) for k, v in before[key].items()), key
    assert not all(torch.equal(v, method.checkpoints["1/2"]["model"][k]) for k, v in before["1/2"].items())
    kept = [i for i in shards[1][: slice_end(15, 3, 2)] if i != request[0]]
    assert method.checkpoints["1/2"]["hash"] == index_hash(np.array(kept))
    x = torch.rand(5, 1, 8, 8)
    mean_softmax = torch.stack([F.softmax(shard(x)[0], dim=1) for shard in method.network.shards]).mean(0)
    assert torch.allclose(method.network(x)[0].exp(), mean_softmax, atol=1e-6)


def test_a_sisa_stage_resumed_from_its_cached_predecessor_equals_the_uninterrupted_run(tiny_npz) -> None:
    from camu_lightning.methods import SISA
    from camu_lightning.methods.sisa import shard_indices

    datamodule = datamodule_for(tiny_npz)

    def sisa() -> SISA:
        settings = dict(num_shards=2, num_slices=3, epochs=2, lr=1e-2, weight_decay=1e-4, batch_size=8)
        return SISA(
            CNN,
            3,
            datamodule.input_shape,
            seed=0,
            aggregation="mean_softmax",
            train_rows=datamodule.train_rows,
            **settings,
        )

    uninterrupted = sisa()
    uninterrupted.create_training_state(datamodule, QUIET_TRAINER)
    shard = 1
    indices = shard_indices(60, 2, seed=0)[shard]
    resumed = sisa()
    resumed.checkpoints = {"1/0": uninterrupted.checkpoints["1/0"]}  # what a cache holds after stage 0
    resumed.train_stages(shard, indices, np.array([], dtype=np.int64), 1, QUIET_TRAINER)
    for stage in (1, 2):
        expected, got = uninterrupted.checkpoints[f"1/{stage}"], resumed.checkpoints[f"1/{stage}"]
        assert all(torch.equal(value, got["model"][key]) for key, value in expected["model"].items()), stage
        for key, state in expected["optimizer"]["state"].items():  # Adam's moments and step count, stage by stage
            assert all(torch.equal(value, got["optimizer"]["state"][key][name]) for name, value in state.items())
    # Every stage keeps its own Adam state: stage 0's step count is its own, not the last stage's.
    steps = [uninterrupted.checkpoints[f"1/{stage}"]["optimizer"]["state"][0]["step"] for stage in range(3)]
    assert steps[0] < steps[1] < steps[2]


def test_sisa_stage_epochs_follow_the_reference_formula() -> None:
    from camu_lightning.methods.sisa import stage_epochs

    assert stage_epochs(10, 5) == [3, 3, 4, 3, 3]
    assert sum(stage_epochs(20, 5)) == 2 * 20 * 5 // 6
