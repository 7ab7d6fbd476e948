"""The CaMU step against the spec's hand computations (camu.md section 10) and its loop invariants."""

import functools
import math

import lightning as L
import pytest
import torch
from torch import nn

from camu_lightning.methods import CaMU
from camu_lightning.methods.camu import TERMS, kl_sum
from camu_lightning.models import CNN
from tests.conftest import fit

ALL_TERMS = list(TERMS)


class Passthrough(nn.Module):
    """Logits = embedding = scale * flattened input: the loss inputs are set directly by the batch."""

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        z = x.flatten(1) * self.scale
        return z, z


def make_camu(network=CNN, num_classes=3, input_shape=(1, 8, 8), terms=ALL_TERMS, **overrides) -> CaMU:
    settings = dict(
        kl_lr=4e-4,
        ce_lr=5e-4,
        weight_decay=1e-4,
        batch_size=8,
        terms=terms,
        remain_kl_weight=0.5,
        counterfactual_kl_weight=0.5,
        counterfactual_ce_weight=0.01,
        remain_ce_weight=0.9,
    )
    method = CaMU(network, num_classes, input_shape, seed=0, **(settings | overrides))
    method.load_original(method.network.state_dict())
    return method


def test_kl_sum_matches_the_hand_computation() -> None:
    target, embedding = torch.zeros(2, 2), torch.tensor([[math.log(3), 0.0]] * 2)
    assert kl_sum(target, embedding).item() == pytest.approx(0.2876821, abs=1e-6)
    assert kl_sum(embedding, target).item() == pytest.approx(2 * 0.1308120, abs=1e-6)  # reversed direction


def test_loss_terms_match_the_spec_oracle() -> None:
    method = make_camu(Passthrough, num_classes=2, input_shape=(1, 1, 2))
    method.original.network.scale.data.zero_()  # the frozen model embeds every input as [0, 0]
    remain = {"x": torch.tensor([[math.log(3), 0.0]] * 2), "y": torch.tensor([0, 0])}
    tuples = {
        "index": torch.arange(2),
        "x_forget": torch.zeros(2, 2),
        "x_counterfactual": torch.rand(2, 2),
        "y_counterfactual": torch.tensor([1, 1]),
    }
    representation = method.representation_terms(tuples, {**remain})
    assert representation["remain_kl"].item() == pytest.approx(0.2876821, abs=1e-6)
    assert representation["counterfactual_kl"].item() == pytest.approx(0.0, abs=1e-7)
    assert method.weighted_sum(representation, ("remain_kl", "counterfactual_kl")).item() == pytest.approx(
        0.1438410, abs=1e-6
    )
    output = method.output_terms(
        {**tuples, "x_forget": torch.tensor([[math.log(3), 0.0]] * 2)},
        {"x": torch.zeros(2, 2), "y": torch.tensor([0, 0])},
    )
    assert output["remain_ce"].item() == pytest.approx(math.log(2), abs=1e-6)
    assert output["counterfactual_ce"].item() == pytest.approx(math.log(4), abs=1e-6)
    assert method.weighted_sum(output, ("counterfactual_ce", "remain_ce")).item() == pytest.approx(0.6376954, abs=1e-6)


def test_one_concatenated_forward_equals_separate_forwards() -> None:
    method = make_camu()
    inputs = [torch.rand(5, 1, 8, 8), torch.rand(3, 1, 8, 8)]
    joint = method.forward_each(inputs)
    method.single_forward = False
    separate = method.forward_each(inputs)
    for (logits_a, emb_a), (logits_b, emb_b) in zip(joint, separate, strict=True):
        assert torch.allclose(logits_a, logits_b, atol=1e-6) and torch.allclose(emb_a, emb_b, atol=1e-6)


def test_frozen_embedding_cache_returns_the_frozen_models_output() -> None:
    method = make_camu()
    x = torch.rand(6, 1, 8, 8)
    first = method.frozen_embeddings("remain", x[:3], torch.tensor([4, 0, 2]))
    again = method.frozen_embeddings("remain", torch.zeros(3, 1, 8, 8), torch.tensor([4, 0, 2]))  # served from cache
    assert torch.equal(first, again)
    assert torch.allclose(first, method.original(x[:3])[1])


class StepCounter(L.Callback):
    """Counts each optimizer's steps and checks the frozen model before every batch."""

    def on_train_start(self, trainer, pl_module):
        self.steps = [0, 0]
        self.batches = 0
        for position, optimizer in enumerate(trainer.optimizers):
            optimizer.register_step_post_hook(lambda *_, p=position: self.steps.__setitem__(p, self.steps[p] + 1))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        assert not pl_module.original.network.training
        self.batches += 1


def test_each_optimizer_steps_once_per_batch_and_the_original_never_changes(tiny_datamodule, make_trainer) -> None:
    method = make_camu()
    original = {key: value.clone() for key, value in method.original.state_dict().items()}
    counter = StepCounter()
    fit(make_trainer(max_steps=-1, max_epochs=2, callbacks=[counter], limit_val_batches=0), method, tiny_datamodule)
    batches_per_epoch = math.ceil(len(tiny_datamodule.split.forget) / 8)
    assert counter.batches == 2 * batches_per_epoch and counter.steps == [counter.batches, counter.batches]
    assert all(torch.equal(value, method.original.state_dict()[key]) for key, value in original.items())
    assert not method.original.network.training


def test_first_batch_moves_every_parameter_by_at_most_the_learning_rates(tiny_datamodule, make_trainer) -> None:
    method = make_camu()
    before = [p.detach().clone() for p in method.network.parameters()]
    fit(make_trainer(max_steps=2, limit_val_batches=0), method, tiny_datamodule)  # 2 optimizer steps = 1 batch
    moves = torch.cat(
        [(p.detach() - b).abs().flatten() for p, b in zip(method.network.parameters(), before, strict=True)]
    )
    assert moves.max() <= 4e-4 + 5e-4 + 1e-7
    assert moves.max() > 4e-4  # Adam's first step is close to lr per optimizer where the gradient is not tiny


def test_finetune_terms_never_step_the_kl_optimizer_nor_build_tuples(tiny_datamodule, make_trainer) -> None:
    method = make_camu(terms=["remain_ce"])
    counter = StepCounter()
    fit(make_trainer(max_steps=-1, max_epochs=1, callbacks=[counter], limit_val_batches=0), method, tiny_datamodule)
    assert counter.steps[0] == 0 and counter.steps[1] == counter.batches > 0
    assert tiny_datamodule.tuples is None


def test_unknown_terms_and_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="model.terms must be a non-empty subset of remain_kl"):
        make_camu(terms=["remain_kl", "forget_ce"])
    with pytest.raises(ValueError, match="model.kl_lr must be > 0, got 0"):
        make_camu(kl_lr=0)


def test_bf16_mixed_losses_match_float32_within_tolerance() -> None:
    method = make_camu()
    remain = {"x": torch.rand(8, 1, 8, 8), "y": torch.randint(0, 3, (8,))}
    tuples = {
        "index": torch.arange(8),
        "x_forget": torch.rand(8, 1, 8, 8),
        "x_counterfactual": torch.rand(8, 1, 8, 8),
        "y_counterfactual": torch.randint(0, 3, (8,)),
    }
    exact = method.representation_terms(tuples, remain) | method.output_terms(tuples, remain)
    method.frozen_embeddings.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = method.representation_terms(tuples, remain) | method.output_terms(tuples, remain)
    for name, value in exact.items():
        assert mixed[name].dtype == torch.float32
        assert mixed[name].item() == pytest.approx(value.item(), rel=0.05, abs=0.02), name


def test_resnet_with_augmented_remain_stream_trains_and_keeps_the_frozen_batch_norm(tiny_rgb_npz, make_trainer):
    from camu_lightning.data import UnlearningDataModule
    from camu_lightning.models import ResNet18

    datamodule = UnlearningDataModule(
        dataset=str(tiny_rgb_npz),
        forget_fraction=0.25,
        forget_repeat=1,
        split_seed=0,
        cf_label_rule="keep_remain",
        pipeline="cifar32",
        mia_attack_size=4000,
    )
    method = make_camu(
        functools.partial(ResNet18, stem="cifar32"), num_classes=4, input_shape=(3, 32, 32), kl_lr=1e-5, ce_lr=1e-4
    )
    assert not method.single_forward  # batch norm: x_r and x_f go through separate forwards
    running_mean = method.original.network.backbone.bn1.running_mean.clone()
    before = method.network.fc2.weight.detach().clone()
    fit(make_trainer(max_steps=4, limit_val_batches=0), method, datamodule)
    assert torch.equal(method.original.network.backbone.bn1.running_mean, running_mean)
    assert not torch.equal(method.network.fc2.weight, before)
    assert "remain" not in method.frozen_embeddings.values  # re-augmented each epoch, so never cached


def test_unlearning_time_counts_every_epoch_and_no_validation(tiny_datamodule, make_trainer) -> None:
    import time

    class Slow(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            time.sleep(0.02)

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            time.sleep(0.2)

    method = make_camu()
    started = time.perf_counter()
    clock = fit(make_trainer(max_steps=-1, max_epochs=3, callbacks=[Slow()]), method, tiny_datamodule)
    wall = time.perf_counter() - started
    batches, validation_batches = 3 * math.ceil(12 / 8), 3 * (math.ceil(48 / 16) + 1 + math.ceil(30 / 16))
    assert clock.elapsed >= batches * 0.02  # every epoch's batches are inside the clock
    assert clock.elapsed <= wall - validation_batches * 0.2  # no validation batch is


def test_a_saved_checkpoint_reloads_into_the_same_method(tiny_datamodule, make_trainer, tmp_path) -> None:
    method = make_camu()
    trainer = make_trainer(max_steps=2, limit_val_batches=0)
    fit(trainer, method, tiny_datamodule)
    trainer.save_checkpoint(tmp_path / "camu.ckpt")
    reloaded = CaMU.load_from_checkpoint(tmp_path / "camu.ckpt", network=CNN, weights_only=True)
    assert reloaded.hparams.terms == ALL_TERMS and reloaded.hparams.kl_lr == 4e-4
    for key, value in method.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


def test_validation_does_not_change_the_training_run(tiny_datamodule, make_trainer) -> None:
    weights = []
    for validation in ({"limit_val_batches": 0}, {"check_val_every_n_epoch": 1}):
        torch.manual_seed(3)
        method = make_camu()
        fit(make_trainer(max_steps=-1, max_epochs=3, **validation), method, tiny_datamodule)
        weights.append([p.detach().clone() for p in method.network.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_loss_terms_are_written_on_the_trainers_logging_steps_only(tiny_datamodule, make_trainer, tmp_path) -> None:
    """log_every_n_steps=2 over 2 epochs of 3 batches: the Trainer writes step metrics after batches 1, 3 and 5,
    and those are the only batches that pay for `log_dict` (about 0.6 ms a value)."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="log", version=0)
    trainer = make_trainer(max_steps=-1, max_epochs=2, limit_val_batches=0, logger=logger, log_every_n_steps=2)
    method = make_camu(batch_size=4)
    calls = []
    log_dict = method.log_dict
    method.log_dict = lambda values, **kwargs: calls.append(sorted(values)) or log_dict(values, **kwargs)
    fit(trainer, method, tiny_datamodule)
    assert math.ceil(len(tiny_datamodule.split.forget) / 4) == 3
    assert calls == [[f"train/{term}" for term in sorted(TERMS)]] * 3
    rows = list(csv.DictReader((tmp_path / "log" / "version_0" / "metrics.csv").open()))
    written = [row for row in rows if row.get("train/remain_kl")]
    assert [int(row["step"]) for row in written] == [1, 3, 5]
    assert all(set(TERMS) <= {key.removeprefix("train/") for key, value in row.items() if value} for row in written)
