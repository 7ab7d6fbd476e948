import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from camu_lightning.data.attack_sets import EVAL_MEMBER, EVAL_NONMEMBER, TRAIN_MEMBER, TRAIN_NONMEMBER
from camu_lightning.metrics import PaperMIA, SliceAccuracies, paper_mia, sorted_softmax


def test_slice_accuracies_accumulate_like_counting_over_the_concatenated_batches() -> None:
    generator = torch.Generator().manual_seed(0)
    metric = SliceAccuracies(num_classes=5)
    batches = [
        (torch.randn(n, 5, generator=generator), torch.randint(0, 5, (n,), generator=generator)) for n in (7, 3, 11)
    ]
    for logits, labels in batches:
        metric.update("forget", logits, labels)
    logits, labels = (torch.cat(parts) for parts in zip(*batches, strict=True))
    expected = 100 * np.mean(logits.argmax(1).numpy() == labels.numpy())
    assert metric.compute()["acc_forget"] == pytest.approx(expected, abs=1e-4)
    metric.reset()
    metric.update("forget", torch.eye(5), torch.arange(5))
    assert metric.compute()["acc_forget"] == pytest.approx(100.0)


def test_accuracy_toy_oracle() -> None:
    metric = SliceAccuracies(num_classes=3)
    metric.update("test", torch.eye(3)[[0, 1, 1, 2]], torch.tensor([0, 1, 2, 2]))
    assert metric.compute()["acc_test"] == pytest.approx(75.0)


def test_class_removal_routes_test_rows_by_their_class() -> None:
    metric = SliceAccuracies(num_classes=3)
    labels = torch.tensor([0, 0, 1, 2])
    metric.update("test", torch.eye(3)[[1, 0, 1, 2]], labels, in_forget_classes=labels == 0)
    result = metric.compute()
    assert result["acc_test_forget"] == pytest.approx(50.0)
    assert result["acc_test_remain"] == pytest.approx(100.0)
    assert result["acc_test"] == pytest.approx(75.0)


def _features(confident: bool, count: int, generator: torch.Generator, classes: int = 10) -> torch.Tensor:
    logits = torch.randn(count, classes, generator=generator) * (0.05 if not confident else 1.0)
    if confident:
        logits[torch.arange(count), torch.randint(0, classes, (count,), generator=generator)] += 12
    return sorted_softmax(logits)


def test_sorted_softmax_is_an_ascending_probability_row() -> None:
    features = sorted_softmax(torch.tensor([[2.0, 0.0, 1.0]]))
    expected = np.sort(np.exp([2.0, 0.0, 1.0]) / np.exp([2.0, 0.0, 1.0]).sum())
    assert np.allclose(features.numpy()[0], expected)


def test_paper_mia_separable_members_score_100() -> None:
    generator = torch.Generator().manual_seed(0)
    score = paper_mia(
        _features(True, 400, generator),
        _features(False, 400, generator),
        _features(True, 300, generator),
        _features(False, 300, generator),
        seed=0,
    )
    # xgboost's default "hist" splits sit on training values, so a held-out row just outside its cluster's
    # training range can fall on the wrong side: hence about 100, not exactly.
    assert score == pytest.approx(100.0, abs=1.0)


def test_paper_mia_on_one_distribution_scores_about_50() -> None:
    generator = torch.Generator().manual_seed(1)
    rows = [sorted_softmax(torch.randn(2000, 10, generator=generator)) for _ in range(4)]
    assert paper_mia(*rows, seed=0) == pytest.approx(50.0, abs=4.0)


def test_paper_mia_forget_rows_like_nonmembers_score_exactly_50() -> None:
    generator = torch.Generator().manual_seed(2)
    members, nonmembers = _features(True, 400, generator), _features(False, 400, generator)
    resampled = nonmembers[torch.randint(0, 400, (600,), generator=generator)]  # inside the attack's training range
    assert paper_mia(members, nonmembers, resampled[:300], resampled[300:], seed=0) == 50.0


def test_paper_mia_equals_a_direct_xgboost_reference() -> None:
    from sklearn.model_selection import train_test_split
    from xgboost import XGBClassifier

    generator = torch.Generator().manual_seed(3)
    members, nonmembers = _features(True, 200, generator), sorted_softmax(torch.randn(200, 10, generator=generator))
    forget, test = sorted_softmax(torch.randn(100, 10, generator=generator) * 3), _features(False, 100, generator)
    features = np.vstack([members.numpy(), nonmembers.numpy()])
    labels = np.r_[np.ones(200), np.zeros(200)]
    x_fit, _, y_fit, _ = train_test_split(features, labels, test_size=0.01, shuffle=True, random_state=7)
    attack = XGBClassifier(n_estimators=100, objective="binary:logistic", booster="gbtree", random_state=7).fit(
        x_fit, y_fit
    )
    expected = 100 * accuracy_score(np.r_[np.ones(100), np.zeros(100)], attack.predict(np.vstack([forget, test])))
    assert paper_mia(members, nonmembers, forget, test, seed=7) == pytest.approx(expected)


def test_paper_mia_metric_scores_the_rows_in_global_order_whatever_the_batches() -> None:
    generator = torch.Generator().manual_seed(4)
    roles = torch.tensor([TRAIN_MEMBER] * 60 + [TRAIN_NONMEMBER] * 60 + [EVAL_MEMBER] * 30 + [EVAL_NONMEMBER] * 30)
    features = torch.where((roles == TRAIN_MEMBER) | (roles == EVAL_MEMBER), 2.0, 0.0)[:, None] + torch.randn(
        180, 10, generator=generator
    )
    features = sorted_softmax(features)
    copies = torch.randint(1, 3, (180,), generator=generator)  # a row the attack set holds twice counts twice
    order = torch.arange(180) * 7 + 3
    by_role = {r: features[roles == r].repeat_interleave(copies[roles == r], dim=0) for r in roles.unique().tolist()}
    expected = paper_mia(by_role[TRAIN_MEMBER], by_role[TRAIN_NONMEMBER], by_role[EVAL_MEMBER],
                         by_role[EVAL_NONMEMBER], seed=5)  # fmt: skip
    metric = PaperMIA(seed=5)
    shuffled = torch.randperm(180, generator=generator)
    for batch in shuffled.split(25):  # batches in another order, as several ranks' loaders hand them out
        metric.update(features[batch], roles[batch], copies[batch], order[batch])
    assert float(metric.compute()) == expected
    metric.reset()
    assert np.isnan(float(metric.compute()))


def test_error_percent_counts_exactly_like_numpy_over_the_kept_classes() -> None:
    from camu_lightning.passes import error_percent

    class Network(torch.nn.Module):  # the suite's networks return (logits, embedding)
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(12, 5)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
            return self.linear(x), None

    generator = torch.Generator().manual_seed(6)
    network = Network().train()
    batches = [{"x": torch.randn(n, 12, generator=generator), "y": torch.randint(0, 5, (n,), generator=generator)}
               for n in (7, 100, 33)]  # fmt: skip
    with torch.no_grad():
        predicted = torch.cat([network(batch["x"])[0].argmax(1) for batch in batches]).numpy()
    labels = torch.cat([batch["y"] for batch in batches]).numpy()
    assert error_percent(network, batches) == 100.0 * np.sum(predicted != labels) / len(labels)
    kept = np.isin(labels, [1, 3])
    assert error_percent(network, batches, torch.tensor([1, 3])) == 100.0 * np.sum(predicted[kept] != labels[kept]) / (
        kept.sum()
    )
    assert network.training  # its mode is given back
    assert np.isnan(error_percent(network, batches, torch.tensor([9])))
