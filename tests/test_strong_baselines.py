"""Today's strongest baselines (baselines.md sections 11-13) and SCRUB+R (section 6), each against the property its
spec's "Tests." line names, computed independently of the method's code."""

from __future__ import annotations

import copy

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camu_lightning.data.rows import collate_batch
from camu_lightning.methods import SCRUB, SSD, L1Sparse, SalUn
from camu_lightning.methods.l1_sparse import l1_weight
from camu_lightning.methods.salun import saliency_mask
from camu_lightning.methods.ssd import dampen, importances
from camu_lightning.models import CNN
from tests.conftest import datamodule_for, fit


class BatchNormNet(nn.Module):
    """A small network with BatchNorm, (logits, embedding) like the suite's networks."""

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.features = nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(4 * height * width, num_classes)

    def forward(self, x):
        embedding = self.features(x)
        return self.head(embedding), embedding


class Steps(L.Callback):
    """Every training batch, the weights before its step and the gradient the module received (unmasked: callbacks'
    on_before_optimizer_step runs before the module's)."""

    def __init__(self) -> None:
        self.batches, self.before, self.gradients, self.after = [], [], [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(copy.deepcopy(batch))
        self.before.append({k: p.detach().clone() for k, p in pl_module.network.named_parameters()})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.gradients.append({k: p.grad.detach().clone() for k, p in pl_module.network.named_parameters()})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after.append({k: p.detach().clone() for k, p in pl_module.network.named_parameters()})


def rows(dataset, indices=None):
    """All rows of a stream dataset as one batch."""
    return dataset.__getitems__(list(range(len(dataset))) if indices is None else indices)


# ----------------------------------------------------------------- SalUn
def test_salun_mask_keeps_exactly_the_largest_saliencies_over_all_parameters() -> None:
    generator = torch.Generator().manual_seed(0)
    gradients = {"a": torch.randn(7, 5, generator=generator), "b": torch.randn(13, generator=generator)}
    for ratio in (0.1, 0.5, 0.77, 1.0):
        mask = saliency_mask(gradients, ratio)
        selected = torch.cat([gradients[k].abs()[mask[k]] for k in gradients])
        unselected = torch.cat([gradients[k].abs()[~mask[k]] for k in gradients])
        assert len(selected) == int(48 * ratio)
        assert unselected.numel() == 0 or selected.min() >= unselected.max()


def salun(datamodule, **overrides) -> SalUn:
    settings = dict(mask_ratio=0.5, lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=16)
    return SalUn(CNN, 3, datamodule.input_shape, seed=0, **(settings | overrides))


def test_salun_saliency_is_the_summed_gradient_of_minus_ce_over_forget_batches(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = salun(datamodule, batch_size=5)
    original = copy.deepcopy(method.network).eval()
    fit(make_trainer(max_steps=-1, max_epochs=1, limit_train_batches=0, limit_val_batches=0), method, datamodule)
    # Independently: one backward of the summed batch-mean losses, forget rows in order, batches of 5.
    forget = datamodule.stream("forget", None)
    total = sum(
        -F.cross_entropy(original(batch["x"])[0], batch["y"])
        for batch in (rows(forget, list(range(s, min(s + 5, len(forget))))) for s in range(0, len(forget), 5))
    )
    gradients = dict(
        zip(dict(original.named_parameters()), torch.autograd.grad(total, list(original.parameters())), strict=True)
    )
    expected = saliency_mask(gradients, 0.5)
    assert all(torch.equal(method.mask[name], expected[name]) for name in expected)


def test_salun_frozen_weights_stay_bitwise_and_salient_ones_take_an_sgd_step(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method, steps = salun(datamodule), Steps()
    start = {k: p.detach().clone() for k, p in method.network.named_parameters()}
    trainer = make_trainer(max_steps=-1, max_epochs=1, limit_val_batches=0, callbacks=[steps])
    fit(trainer, method, datamodule)
    assert len(steps.after) >= 4
    assert sum(int(m.sum()) for m in method.mask.values()) == int(sum(p.numel() for p in start.values()) * 0.5)
    for name, p0 in start.items():
        frozen = ~method.mask[name]
        for after in steps.after:
            assert torch.equal(after[name][frozen], p0[frozen])
        buffer = trainer.optimizers[0].state[dict(method.network.named_parameters())[name]]["momentum_buffer"]
        assert torch.all(buffer[frozen] == 0)
        # Step 1 of a fresh SGD: p0 - lr * (grad + wd * p0) on the salient entries.
        expected = p0 - 0.05 * (steps.gradients[0][name] + 5e-4 * p0)
        assert torch.allclose(steps.after[0][name][~frozen], expected[~frozen], atol=1e-7)


# ----------------------------------------------------------------- SSD
def importance_by_torch_func(network: nn.Module, batches) -> dict[str, torch.Tensor]:
    """Mean over batches of the squared batch gradient, through torch.func (no autograd state on the module)."""
    parameters = {k: p.detach() for k, p in network.named_parameters()}

    def loss(params, x, y):
        return F.cross_entropy(torch.func.functional_call(network, params, (x,))[0], y)

    grads = [torch.func.grad(loss)(parameters, batch["x"], batch["y"]) for batch in batches]
    return {k: torch.stack([g[k] ** 2 for g in grads]).mean(0) for k in parameters}


def test_ssd_dampens_exactly_the_selected_elements(tiny_npz) -> None:
    datamodule = datamodule_for(tiny_npz)
    network = BatchNormNet(3, datamodule.input_shape).eval()
    batches = {
        name: [
            rows(datamodule.stream(name, None), list(range(s, min(s + 8, len(datamodule.stream(name, None))))))
            for s in range(0, len(datamodule.stream(name, None)), 8)
        ]
        for name in ("forget_fixed", "train_fixed")
    }
    forget = importance_by_torch_func(network, batches["forget_fixed"])
    full = importance_by_torch_func(network, batches["train_fixed"])
    ours = importances(network, datamodule.pass_loaders({"forget_fixed": 8})["forget_fixed"])
    assert all(torch.allclose(ours[k], forget[k], rtol=1e-5, atol=1e-12) for k in forget)
    before = {k: p.detach().clone() for k, p in network.named_parameters()}
    buffers = {k: b.clone() for k, b in network.named_buffers()}
    count = dampen(network, forget, full, selection_weighting=1.5, dampening=1.0)
    assert count > 0
    for name, parameter in network.named_parameters():
        selected = forget[name] > 1.5 * full[name]
        assert torch.equal(parameter[~selected], before[name][~selected])
        factor = torch.clamp(full[name][selected] / forget[name][selected], max=1.0)
        assert torch.allclose(parameter[selected], before[name][selected] * factor)
        assert torch.all(parameter.abs() <= before[name].abs()) and not torch.isnan(parameter).any()
    assert all(torch.equal(b, buffers[k]) for k, b in network.named_buffers())


def test_ssd_changes_nothing_when_forget_and_full_importances_agree(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    network = BatchNormNet(3, datamodule.input_shape).eval()
    same = importances(network, datamodule.pass_loaders({"forget_fixed": 8})["forget_fixed"])
    before = copy.deepcopy(network.state_dict())
    assert dampen(network, same, same, selection_weighting=1.0, dampening=1.0) == 0
    assert all(torch.equal(value, before[key]) for key, value in network.state_dict().items())
    # Through the CLI path: BN running statistics are untouched, and only parameters move.
    method = SSD(BatchNormNet, 3, datamodule.input_shape, seed=0, selection_weighting=1.0, dampening_constant=1.0,
                 batch_size=8)  # fmt: skip
    buffers = {k: b.clone() for k, b in method.network.named_buffers()}
    fit(make_trainer(max_steps=-1, max_epochs=1, limit_train_batches=0, limit_val_batches=0), method, datamodule)
    assert method.selected > 0
    assert all(torch.equal(b, buffers[k]) for k, b in method.network.named_buffers())


# ----------------------------------------------------------------- l1-sparse
def test_l1_weight_follows_the_reference_schedule() -> None:
    assert [l1_weight(e, 10, 0, 1.0) for e in range(10)] == pytest.approx([1 - e / 10 for e in range(10)])
    assert [l1_weight(e, 10, 0, 1.0) for e in range(10)][-1] == pytest.approx(0.1)
    assert [l1_weight(e, 5, 2, 0.3) for e in range(5)] == pytest.approx([0.3, 0.2, 0.1, 0.0, 0.0])


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_l1_sparse_steps_equal_sgd_on_ce_plus_gamma_sign(alpha, tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(tiny_npz)
    method = L1Sparse(CNN, 3, datamodule.input_shape, seed=0, lr=0.05, momentum=0.9, weight_decay=5e-4, alpha=alpha,
                      no_l1_epochs=0, batch_size=16)  # fmt: skip
    replay = copy.deepcopy(method.network)
    steps = Steps()
    fit(make_trainer(max_steps=-1, max_epochs=2, limit_val_batches=0, callbacks=[steps]), method, datamodule)
    # Replay: plain SGD on CE, the l1 term's gradient gamma_e * sign(theta) added by hand (sign(0) = 0).
    optimizer = torch.optim.SGD(replay.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    per_epoch = len(steps.batches) // 2
    for index, batch in enumerate(steps.batches):
        remain = batch["remain"]
        optimizer.zero_grad()
        F.cross_entropy(replay(remain["x"])[0], remain["y"]).backward()
        gamma = alpha * (1 - (index // per_epoch) / 2)
        for parameter in replay.parameters():
            parameter.grad += gamma * torch.sign(parameter.detach())
        optimizer.step()
        if index == 0:
            first = {k: p.detach().clone() for k, p in replay.named_parameters()}
    assert all(torch.allclose(steps.after[0][k], first[k], atol=1e-6) for k in first)
    final = dict(method.network.named_parameters())
    assert all(torch.allclose(final[k], p, atol=1e-5) for k, p in replay.named_parameters())


def test_l1_sparse_never_reads_the_forget_set(tiny_npz, make_trainer) -> None:
    results = []
    for blank_forget in (False, True):
        datamodule = datamodule_for(tiny_npz)
        if blank_forget:
            datamodule.arrays.x_train[torch.from_numpy(datamodule.split.forget)] = 0
        L.seed_everything(0, verbose=False)
        method = L1Sparse(CNN, 3, datamodule.input_shape, seed=0, lr=0.05, momentum=0.9, weight_decay=5e-4,
                          alpha=0.01, no_l1_epochs=0, batch_size=16)  # fmt: skip
        L.seed_everything(0, verbose=False)
        fit(make_trainer(max_steps=-1, max_epochs=1, limit_val_batches=0), method, datamodule)
        results.append(method.network.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


# ----------------------------------------------------------------- SCRUB+R
class States(L.Callback):
    def __init__(self) -> None:
        self.states = []

    def on_train_start(self, trainer, pl_module):
        self.states.append(copy.deepcopy(pl_module.network.state_dict()))

    def on_train_epoch_end(self, trainer, pl_module):  # runs before the module's hook, so before any rewind
        self.states.append(copy.deepcopy(pl_module.network.state_dict()))


def test_scrub_r_returns_the_state_an_independent_argmin_picks(tiny_npz, make_trainer) -> None:
    datamodule = datamodule_for(make_image_npz_hard(tiny_npz))
    method = SCRUB(CNN, 3, datamodule.input_shape, seed=0, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                   msteps=2, temperature=4.0, ce_weight=0.99, kl_weight=0.001, decay_epochs=[9], decay_rate=0.1,
                   forget_batch_size=5, remain_batch_size=16, rewind=True)  # fmt: skip
    method.load_original(method.network.state_dict())
    states = States()
    fit(make_trainer(max_steps=-1, max_epochs=4, limit_val_batches=0, callbacks=[states]), method, datamodule)
    assert len(states.states) == 5

    def error(state, images, labels) -> float:
        network = CNN(3, datamodule.input_shape).eval()
        network.load_state_dict(state)
        with torch.no_grad():
            return 100.0 * float((network(images)[0].argmax(1) != labels).float().mean())

    forget = rows(datamodule.stream("forget_fixed", None))
    test = rows(datamodule.stream("test_fixed", None))
    held_out = torch.isin(test["y"], torch.unique(forget["y"]))
    reference = error(states.states[-1], test["x"][held_out], test["y"][held_out])
    errors = np.array([error(state, forget["x"], forget["y"]) for state in states.states])
    assert errors == pytest.approx(method.forget_errors) and len(set(errors.tolist())) > 1, errors
    chosen = int(np.argmin(np.abs(errors - reference)))  # numpy's argmin: the first on ties
    assert method.rewound_to == chosen and method.reference_error == pytest.approx(reference)
    assert all(torch.equal(value, states.states[chosen][key]) for key, value in method.network.state_dict().items())


def make_image_npz_hard(tiny_npz):
    """A low-contrast variant of the tiny data, so errors differ between epochs."""
    from tests.conftest import make_image_npz

    return make_image_npz(tiny_npz.with_name("hard.npz"), noise=120, contrast=40)


def test_new_streams_cover_the_whole_training_and_test_sets(tiny_npz) -> None:
    datamodule = datamodule_for(tiny_npz)
    train = datamodule.stream("train_fixed", None)
    split = datamodule.split
    assert torch.equal(train.rows, torch.cat([torch.from_numpy(split.remain), torch.from_numpy(split.forget)]))
    assert len(datamodule.stream("test_fixed", None)) == 30
    batch = collate_batch(rows(train, [0, 1]))
    assert batch["x"].dtype == torch.float32
