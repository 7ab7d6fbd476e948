import numpy as np
import pytest
import torch

from camu_lightning.data.counterfactual import build_tuples, counterfactual_labels


def _labels(y_forget, y_sample, rule, seed=0):
    rng = np.random.default_rng(seed)
    return counterfactual_labels(torch.tensor(y_forget), torch.tensor(y_sample), 10, rule, rng)


def test_keep_remain_rule_matches_the_spec_oracle() -> None:
    assert _labels([3], [5], "keep_remain").tolist() == [5]
    drawn = _labels([3] * 2000, [3] * 2000, "keep_remain")
    assert 3 not in drawn.tolist()
    assert set(drawn.tolist()) == set(range(10)) - {3}


def test_uniform_rule_never_returns_the_forget_label_and_reaches_all_others() -> None:
    y_forget = torch.arange(2000) % 10
    drawn = counterfactual_labels(y_forget, y_forget.roll(1), 10, "uniform", np.random.default_rng(1))
    assert (drawn != y_forget).all()
    for label in range(10):
        assert set(drawn[y_forget == label].tolist()) == set(range(10)) - {label}


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown data.cf_label_rule 'random'; choose from: keep_remain, uniform"):
        _labels([1], [2], "random")


def test_tuples_pair_each_forget_and_sample_once_and_add_a_unit_mask(tiny_datamodule) -> None:
    split = tiny_datamodule.split
    tuples = tiny_datamodule.build_tuples()
    assert sorted(tuples.forget_index.tolist()) == sorted(split.forget.tolist())
    assert sorted(tuples.sample_index.tolist()) == sorted(split.sample.tolist())
    clean = tiny_datamodule.pipeline.eval(tiny_datamodule.arrays.x_train[tuples.sample_index])
    mask = tuples.x_counterfactual - clean
    assert mask.shape == clean.shape and mask.min() >= 0 and mask.max() < 1
    assert torch.equal(
        tuples.x_forget, tiny_datamodule.pipeline.eval(tiny_datamodule.arrays.x_train[tuples.forget_index])
    )
    assert (tuples.y_counterfactual != tuples.y_forget).all()
    labels = tiny_datamodule.arrays.y_train
    keep = labels[tuples.sample_index] != tuples.y_forget
    assert torch.equal(tuples.y_counterfactual[keep], labels[tuples.sample_index][keep])


def test_mask_is_uniform_on_large_draws() -> None:
    x = torch.zeros(4000, 1, 4, 4)
    labels = torch.arange(8000) % 10
    tuples = build_tuples(
        np.arange(4000), np.arange(4000, 8000), labels, lambda rows: x[rows % 4000], 10, "keep_remain", seed=0
    )
    assert tuples.x_counterfactual.mean().item() == pytest.approx(0.5, abs=0.01)


def test_class_removal_keeps_the_remain_label(tiny_npz) -> None:
    from camu_lightning.data import UnlearningDataModule

    datamodule = UnlearningDataModule(
        dataset=str(tiny_npz),
        forget_classes=[0],
        forget_repeat=1,
        split_seed=0,
        cf_label_rule="keep_remain",
        pipeline="plain",
        mia_attack_size=4000,
    )
    tuples = datamodule.build_tuples()
    assert torch.equal(tuples.y_counterfactual, datamodule.arrays.y_train[tuples.sample_index])
    assert set(tuples.y_counterfactual.tolist()) <= {1, 2}


def test_same_seed_builds_the_same_tuples(tiny_datamodule, tiny_npz) -> None:
    from camu_lightning.data import UnlearningDataModule

    again = UnlearningDataModule(**tiny_datamodule.hparams)
    first, second = tiny_datamodule.build_tuples(), again.build_tuples()
    assert torch.equal(first.x_counterfactual, second.x_counterfactual)
    assert torch.equal(first.y_counterfactual, second.y_counterfactual)
