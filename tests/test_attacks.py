"""The stronger attacks (metrics.md section 5) against section 8's oracles and direct sklearn computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.svm import SVC

from camu_lightning.gaps import gaps_to_retrain, tug_of_war
from camu_lightning.metrics.attacks import (
    LossLRAttack,
    LowFPRAttack,
    StrongerAttacks,
    loss_lr_attack,
    low_fpr_attack,
    svc_efficacy,
)


def test_loss_lr_oracles_separable_100_identical_about_50() -> None:
    rng = np.random.default_rng(0)
    assert loss_lr_attack(rng.uniform(0, 0.1, 400), rng.uniform(1, 2, 600), seed=0) == 100.0
    assert loss_lr_attack(rng.exponential(1, 2000), rng.exponential(1, 2000), seed=0) == pytest.approx(50, abs=5)


def test_loss_lr_equals_a_direct_sklearn_computation_on_the_balanced_rows() -> None:
    rng = np.random.default_rng(1)
    forget, test = rng.exponential(0.5, 300), rng.exponential(1.0, 500)
    chosen = np.random.default_rng(7).choice(test, 300, replace=False)  # the larger side, subsampled as specified
    features = np.clip(np.r_[forget, chosen], -100, 100).reshape(-1, 1)
    labels = np.r_[np.ones(300), np.zeros(300)]
    folds = StratifiedShuffleSplit(n_splits=5, test_size=0.1, random_state=7)
    expected = 100 * cross_val_score(LogisticRegression(), features, labels, cv=folds, scoring="accuracy").mean()
    assert loss_lr_attack(forget, test, seed=7) == pytest.approx(expected)


def test_svc_efficacy_oracles_and_a_direct_sklearn_call() -> None:
    rng = np.random.default_rng(2)
    members, nonmembers = rng.uniform(0.9, 1, 300), rng.uniform(0, 0.1, 300)
    assert svc_efficacy(members, nonmembers, rng.uniform(0.9, 1, 100)) == 0.0
    assert svc_efficacy(members, nonmembers, rng.uniform(0, 0.1, 100)) == 100.0
    same = [rng.uniform(0, 1, 200) for _ in range(3)]
    attack = SVC(C=3, gamma="auto", kernel="rbf").fit(
        np.r_[same[0], same[1]].reshape(-1, 1), np.r_[[1] * 200, [0] * 200]
    )
    assert svc_efficacy(*same) == pytest.approx(100 * (1 - attack.predict(same[2].reshape(-1, 1)).mean()))


def test_auc_and_tpr_at_1_percent_fpr_match_the_hand_computation() -> None:
    auc, tpr = low_fpr_attack(np.array([0.1, 0.2, 0.3, 0.9]), np.array([0.4, 0.5, 0.6, 0.25]))
    assert auc == pytest.approx(68.75) and tpr == pytest.approx(50.0)  # 11 of 16 pairs; 2 of 4 before a negative
    rng = np.random.default_rng(3)
    separable = low_fpr_attack(rng.uniform(0, 1, 20000), rng.uniform(2, 3, 20000))
    identical = low_fpr_attack(rng.exponential(1, 20000), rng.exponential(1, 20000))
    assert separable == (100.0, 100.0)
    assert identical[0] == pytest.approx(50, abs=1.5) and identical[1] == pytest.approx(1, abs=0.5)


def test_metrics_fed_in_batches_out_of_order_equal_the_function_on_the_rows_in_order() -> None:
    rng = np.random.default_rng(4)
    values = torch.from_numpy(rng.exponential(1, 90))
    role = torch.from_numpy(rng.integers(0, 2, 90))
    order = torch.arange(90)
    loss_lr, low_fpr = LossLRAttack(seed=3), LowFPRAttack()
    for part in (torch.arange(60, 90), torch.arange(0, 25), torch.arange(25, 60)):  # as ranks would deliver them
        loss_lr.update(values[part], role[part], order[part])
        low_fpr.update(values[part], role[part], order[part])
    forget, test = values[role == 1].numpy(), values[role == 0].numpy()
    assert float(loss_lr.compute()) == pytest.approx(loss_lr_attack(forget, test, seed=3))
    auc = float(low_fpr.compute()["mia_auc"])
    assert auc == pytest.approx(100 * roc_auc_score(role.numpy(), -values.numpy()))
    loss_lr.reset()
    assert loss_lr.value == [] and loss_lr.order == []


def test_the_attack_suite_routes_each_evaluation_set_to_its_attacks() -> None:
    generator = torch.Generator().manual_seed(5)
    suite = StrongerAttacks(seed=0)
    sets = {
        name: (torch.randn(n, 3, generator=generator), torch.randint(0, 3, (n,), generator=generator))
        for name, n in (("remain", 40), ("forget", 10), ("test", 20))
    }
    shadow = torch.arange(40) < 20  # min(|T|, |D_r|) = 20
    removed = sets["test"][1] == 0  # class removal: N is the test rows of the removed class
    for index, (name, (logits, labels)) in enumerate(sets.items()):
        suite.update(
            name,
            logits,
            labels,
            index * 1000 + torch.arange(len(labels)),
            shadow if name == "remain" else None,
            removed if name == "test" else None,
        )
    loss = {
        name: torch.nn.functional.cross_entropy(logits, labels, reduction="none").double().numpy()
        for name, (logits, labels) in sets.items()
    }
    confidence = {
        name: logits.softmax(1).gather(1, labels[:, None])[:, 0].double().numpy()
        for name, (logits, labels) in sets.items()
    }
    results = suite.compute()
    assert results["mia_loss_lr"] == pytest.approx(
        loss_lr_attack(loss["forget"], loss["test"][removed.numpy()], seed=0)
    )
    assert results["mia_auc"] == pytest.approx(low_fpr_attack(loss["forget"], loss["test"][removed.numpy()])[0])
    svc = svc_efficacy(confidence["remain"][:20], confidence["test"], confidence["forget"])
    assert results["mia_svc_efficacy"] == pytest.approx(svc)


def test_tug_of_war_matches_the_spec_example() -> None:
    method = {"acc_forget": 90.0, "acc_remain": 98.0, "acc_test": 97.0, "mia_svc_efficacy": 40.0}
    retrain = {"acc_forget": 95.0, "acc_remain": 99.0, "acc_test": 97.5, "mia_svc_efficacy": 50.0}
    tow = tug_of_war(method, retrain)
    assert tow["tow"] == pytest.approx(0.95 * 0.99 * 0.995) == pytest.approx(0.9357975)
    assert tow["tow_mia"] == pytest.approx(0.90 * 0.99 * 0.995)


def test_class_removal_gaps_every_shared_metric_but_averages_only_the_class_table() -> None:
    names = ("acc_remain", "acc_forget", "acc_test", "acc_test_remain", "acc_test_forget", "mia", "mia_auc")
    method = dict(zip(names, (99.0, 2.0, 90.0, 98.0, 1.0, 30.0, 48.0), strict=True)) | {"time_unlearn_s": 10.0}
    retrain = dict(zip(names, (99.5, 0.0, 89.0, 99.0, 0.0, 27.0, 50.0), strict=True)) | {"time_unlearn_s": 100.0}
    gaps = gaps_to_retrain(method, retrain, class_removal=True)
    assert gaps["gap_acc_forget"] == 2.0 and gaps["gap_acc_remain"] == -0.5 and gaps["gap_mia_auc"] == -2.0
    assert gaps["avg_gap"] == pytest.approx((1.0 + 1.0 + 3.0) / 3)  # acc_test_remain, acc_test_forget, mia
    assert gaps["rte"] == 10.0 and "rte_with_prepare" not in gaps


def test_rte_with_prepare_charges_training_time_state() -> None:
    method = {"acc_remain": 99.0, "acc_forget": 98.0, "acc_test": 98.0, "mia": 50.0}
    unroll = method | {"time_unlearn_s": 0.001, "time_prepare_s": 49.999}
    gaps = gaps_to_retrain(unroll, method | {"time_unlearn_s": 500.0}, class_removal=False)
    assert gaps["rte"] == pytest.approx(500_000.0) and gaps["rte_with_prepare"] == pytest.approx(10.0)


def test_loss_lr_on_tiny_sets_holds_out_two_rows_and_is_undefined_below_two_per_side() -> None:
    assert loss_lr_attack(np.array([0.1, 0.2, 0.3, 0.4]), np.array([2.0, 3.0, 4.0, 5.0]), seed=0) == 100.0
    assert np.isnan(loss_lr_attack(np.array([0.1]), np.array([2.0, 3.0]), seed=0))
