"""`forget_quality`, the NeurIPS 2023 Machine Unlearning challenge score (metrics.md section 9).

A per-example attack against the distribution of retrained models: for each forget example, the N logit-scaled
confidences of N Retrain models and of N runs of the method are told apart by the best threshold or band rule,
that rule's (epsilon, delta) privacy loss is the example's epsilon, and epsilons earn bucketed points. 1 means no
rule tells the method from Retrain on any example.

Each example tries ~1e5-1e6 rules; they are counted with `searchsorted` on the sorted values, the same rules and
counts as the spec's direct enumeration (tested against a transcription of it).
"""

from __future__ import annotations

import math

import numpy as np

DELTA = 1e-5
MAX_EPSILON = 50.0


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log p_y - log(1 - p_y) per row, in float64 and stable: p_wrong sums the other classes' probabilities."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    true = np.zeros_like(probabilities, dtype=bool)
    true[np.arange(len(labels)), labels] = True
    p_true = probabilities[true]
    p_wrong = np.where(true, 0.0, probabilities).sum(axis=1)
    return np.log(p_true + 1e-45) - np.log(p_wrong + 1e-45)


def rule_epsilons(false_negative: np.ndarray, false_positive: np.ndarray) -> np.ndarray:
    """Step 4's epsilon of each rule: infinite where both error rates are 0, the rule dropped where exactly one is."""
    both_zero = (false_negative == 0) & (false_positive == 0)
    one_zero = (false_negative == 0) ^ (false_positive == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log(1 - DELTA - false_positive) - np.log(false_negative)
        second = np.log(1 - DELTA - false_negative) - np.log(false_positive)
    epsilon = np.fmax(0.0, np.fmax(first, second))  # fmax passes over the NaN of log(<= 0)
    return np.where(both_zero, np.inf, epsilon)[~one_zero]


def _inside(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How many of the sorted `values` lie in each [low, high]."""
    return np.searchsorted(values, high, side="right") - np.searchsorted(values, low, side="left")


def example_epsilon(retrain: np.ndarray, method: np.ndarray) -> float:
    """Steps 2-4 for one forget example: its N Retrain values against its N values under the method."""
    retrain, method = np.sort(np.asarray(retrain, np.float64)), np.sort(np.asarray(method, np.float64))
    spans = (retrain[-1] - retrain[0], method[-1] - method[0])
    if max(spans) == 0:  # both sides constant: told apart exactly when they differ
        return 0.0 if retrain[0] == method[0] else MAX_EPSILON
    if min(spans) / max(spans) < 0.01:
        return MAX_EPSILON  # a peaked side is a tell
    positive, negative = (retrain, method) if np.median(retrain) > np.median(method) else (method, retrain)
    # Single threshold: "positive" iff c >= t.
    low, high = min(retrain[0], method[0]), max(retrain[-1], method[-1])
    threshold = np.linspace(low, high, math.ceil((high - low) * 100))
    true_positive = (len(positive) - np.searchsorted(positive, threshold, side="left")) / len(positive)
    false_positive = (len(negative) - np.searchsorted(negative, threshold, side="left")) / len(negative)
    epsilons = [rule_epsilons(1 - true_positive, false_positive)]
    # Double threshold: the peakier side is predicted iff l <= c <= r.
    peaky, other = (
        (positive, negative) if positive[-1] - positive[0] <= negative[-1] - negative[0] else (negative, positive)
    )
    width = peaky[-1] - peaky[0]
    start, stop = peaky[0] + width - 2, peaky[-1] + 2
    right = np.linspace(start, stop, math.ceil((stop - start) * 100))
    left = np.linspace(right - width - 2, right - width + 2, 400, axis=1)
    right = np.broadcast_to(right[:, None], left.shape)
    hit = _inside(peaky, left, right) / len(peaky)
    false_alarm = _inside(other, left, right) / len(other)
    epsilons.append(rule_epsilons(1 - hit, false_alarm).ravel())
    kept = np.concatenate(epsilons)
    return float(np.clip(kept.max(), 0.0, MAX_EPSILON)) if kept.size else 0.0


def bucket_points(epsilons: np.ndarray, num_models: int) -> np.ndarray:
    """Step 5: buckets [0, .5), [.5, 1), ... up to E = ceil(ln(N - 1)), worth 1, 1/2, 1/4, ...; none past E."""
    upper_edges = 0.5 * np.arange(1, 2 * math.ceil(math.log(num_models - 1)) + 1)
    bucket = np.searchsorted(upper_edges, epsilons, side="right")  # the first bucket whose upper edge exceeds it
    return np.where(bucket < len(upper_edges), 0.5 ** np.minimum(bucket, len(upper_edges) - 1), 0.0)


def forget_quality(retrain: np.ndarray, method: np.ndarray) -> tuple[float, np.ndarray]:
    """(F, per-example epsilons) from (N, |D_f|) logit-scaled confidences of N Retrain and N unlearned models."""
    retrain, method = np.asarray(retrain, np.float64), np.asarray(method, np.float64)
    if retrain.shape != method.shape or retrain.ndim != 2:
        raise ValueError(
            f"forget_quality needs two (N, |D_f|) arrays of one shape, got {retrain.shape}, {method.shape}"
        )
    if retrain.shape[0] < 3:
        raise ValueError(f"forget_quality needs N >= 3 models a side (E = ceil(ln(N - 1)) > 0), got {retrain.shape[0]}")
    epsilons = np.array([example_epsilon(retrain[:, i], method[:, i]) for i in range(retrain.shape[1])])
    return float(bucket_points(epsilons, retrain.shape[0]).mean()), epsilons


def utility_adjusted(quality: float, method: dict[str, float], retrain: dict[str, float]) -> float:
    """`forget_quality_final`: F times the method's mean acc_remain and acc_test over Retrain's (means over models)."""
    return quality * method["acc_remain"] / retrain["acc_remain"] * method["acc_test"] / retrain["acc_test"]
