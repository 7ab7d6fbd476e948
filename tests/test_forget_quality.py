"""forget_quality (metrics.md section 9) against its oracles, a hand-worked N = 4 case and a direct transcription."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camu_lightning.metrics.forget_quality import (
    bucket_points,
    example_epsilon,
    forget_quality,
    logit_scaled_confidence,
    utility_adjusted,
)


def direct_epsilon(retrain: np.ndarray, method: np.ndarray, delta: float = 1e-5) -> float:
    """Steps 2-4 as written: every rule enumerated, its rates counted with comparisons."""
    spans = (np.ptp(retrain), np.ptp(method))
    if max(spans) == 0:
        return 0.0 if retrain[0] == method[0] else 50.0
    if min(spans) / max(spans) < 0.01:
        return 50.0
    positive, negative = (retrain, method) if np.median(retrain) > np.median(method) else (method, retrain)
    kept = []

    def judge(fnr: float, fpr: float) -> None:
        if fpr == 0 and fnr == 0:
            kept.append(math.inf)
        elif (fpr == 0) != (fnr == 0):
            return
        else:
            terms = [0.0]
            if 1 - delta - fpr > 0:
                terms.append(math.log(1 - delta - fpr) - math.log(fnr))
            if 1 - delta - fnr > 0:
                terms.append(math.log(1 - delta - fnr) - math.log(fpr))
            kept.append(max(terms))

    everything = np.r_[retrain, method]
    low, high = everything.min(), everything.max()
    for t in np.linspace(low, high, math.ceil((high - low) * 100)):
        judge(np.mean(positive < t), np.mean(negative >= t))
    peaky, other = (positive, negative) if np.ptp(positive) <= np.ptp(negative) else (negative, positive)
    width = np.ptp(peaky)
    start, stop = peaky.min() + width - 2, peaky.max() + 2
    for r in np.linspace(start, stop, math.ceil((stop - start) * 100)):
        for left in np.linspace(r - width - 2, r - width + 2, 400):
            inside_peaky = np.mean((peaky >= left) & (peaky <= r))
            judge(1 - inside_peaky, np.mean((other >= left) & (other <= r)))
    return min(max(max(kept, default=0.0), 0.0), 50.0)


def test_oracles_identical_separated_and_constant() -> None:
    rng = np.random.default_rng(0)
    retrain = rng.normal(0, 1, (8, 20))
    assert forget_quality(retrain, retrain.copy())[0] == 1.0
    assert forget_quality(retrain, retrain + 10)[0] == 0.0
    quality, epsilons = forget_quality(retrain, np.ones_like(retrain))
    assert quality == 0.0 and (epsilons == 50).all()


def test_a_hand_worked_case_with_four_models() -> None:
    # Method shifted by one unit: the best rule (e.g. c >= 1.5) has FNR 1/4 and FPR 1/2, so
    # epsilon = log(1 - 1e-5 - 1/2) - log(1/4) = log(1.99996); E = ceil(ln 3) = 2, so epsilon in [.5, 1) earns 1/2.
    epsilon = example_epsilon(np.array([0.0, 1, 2, 3]), np.array([1.0, 2, 3, 4]))
    assert epsilon == pytest.approx(math.log((0.5 - 1e-5) / 0.25), abs=1e-12)
    quality, _ = forget_quality(np.array([[0.0], [1], [2], [3]]), np.array([[1.0], [2], [3], [4]]))
    assert quality == 0.5


@pytest.mark.parametrize("case", [0, 1, *[pytest.param(case, marks=pytest.mark.slow) for case in range(2, 12)]])
def test_the_fast_rule_count_equals_the_direct_transcription(case: int) -> None:
    rng = np.random.default_rng([1, case])  # the direct enumeration takes ~2 s a case: two in the fast suite
    retrain = rng.normal(0, 0.6, 5)
    method = rng.normal(rng.uniform(-1, 1), rng.uniform(0.05, 1.0), 5)
    assert example_epsilon(retrain, method) == pytest.approx(direct_epsilon(retrain, method), abs=1e-12)


def test_bucket_points_halve_per_half_unit_up_to_e() -> None:
    # N = 32: E = ceil(ln 31) = 4, so 8 buckets worth 1 .. 1/128, nothing from 4 on.
    points = bucket_points(np.array([0.0, 0.49, 0.5, 1.2, 3.99, 4.0, 50.0]), 32)
    assert points.tolist() == [1.0, 1.0, 0.5, 0.25, 0.5**7, 0.0, 0.0]


def test_logit_scaled_confidence_is_stable_and_matches_the_definition() -> None:
    logits = np.array([[2.0, 0.0, 1.0], [1000.0, 0.0, -1000.0]])
    probabilities = np.exp(logits[0]) / np.exp(logits[0]).sum()
    expected = math.log(probabilities[0]) - math.log(1 - probabilities[0])
    values = logit_scaled_confidence(logits, np.array([0, 1]))
    assert values[0] == pytest.approx(expected)
    assert values[1] == pytest.approx(math.log(1e-45))  # p_y underflows to 0: the floor, not -inf or NaN


def test_bad_shapes_and_too_few_models_are_refused_and_utility_scales_f() -> None:
    with pytest.raises(ValueError, match="N >= 3"):
        forget_quality(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="one shape"):
        forget_quality(np.zeros((4, 4)), np.zeros((4, 5)))
    assert utility_adjusted(0.5, {"acc_remain": 90, "acc_test": 80}, {"acc_remain": 100, "acc_test": 100}) == 0.36
