"""Comparisons that know a tie: the paired interval against scipy's one-sample t-test, tied and surely-apart
verdicts from hand-built rows, shared ranks, and the retraining floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from camu_lightning.bench.paired import paired, paired_interval, retrain_floor, shared_places
from camu_lightning.bench.summary import summary_section


def rows(*values: float) -> dict[int, dict]:
    return {seed: {"avg_gap": value} for seed, value in enumerate(values, 1)}


def test_the_interval_is_scipys_one_sample_t_interval_of_the_differences() -> None:
    differences = [0.31, -0.12, 0.47, 0.18, 0.40]
    found = paired_interval(differences)
    reference = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert found.mean == pytest.approx(np.mean(differences))
    assert (found.low, found.high) == pytest.approx((reference.low, reference.high))
    # By hand: mean 0.248, sd (ddof 1) 0.2325, sem 0.1040, t_{0.975, 4} = 2.776: 0.248 ± 0.2887.
    assert (found.low, found.high) == pytest.approx((0.248 - 0.2887, 0.248 + 0.2887), abs=1e-3)
    assert found.verdict == "tied" and found.n == 5
    one = paired_interval([0.4])
    assert one.verdict == "tied" and math.isinf(one.low) and math.isinf(one.high)  # one seed decides nothing


def test_tied_where_the_interval_holds_zero_and_closer_where_it_does_not() -> None:
    camu = rows(0.30, 0.35, 0.28)
    assert paired(camu, rows(0.50, 0.56, 0.47)).verdict == "closer"  # -0.20, -0.21, -0.19
    assert paired(camu, rows(0.10, 0.14, 0.09)).verdict == "farther"
    assert paired(camu, rows(0.20, 0.50, 0.30)).verdict == "tied"  # +0.10, -0.15, -0.02
    assert paired(camu, rows(0.20, 0.50)).n == 2  # seeds both have
    places = shared_places({"camu": camu, "a": rows(0.20, 0.50, 0.30), "b": rows(0.50, 0.56, 0.47)})
    assert places == {"camu": 1, "a": 1, "b": 2}  # b is surely behind CaMU; a is tied with both


def test_the_floor_is_the_gap_between_the_class_removal_retrains_and_the_summary_shows_it() -> None:
    numbers = [(99.0, 50.0), (98.4, 50.6), (99.3, 49.7)]  # acc_test_remain, mia of seeds 1-3
    retrain = {seed: {"acc_test_remain": r, "acc_test_forget": 0.0, "mia": m, "acc_forget": 0.0, "acc_remain": r,
                      "acc_test": r, "time_unlearn_s": 10.0} for seed, (r, m) in enumerate(numbers, 1)}  # fmt: skip
    floor = retrain_floor(retrain, class_removal=True)
    # Pairs (1, 2), (1, 3), (2, 3): mean |gap| over acc_test_remain, acc_test_forget, mia.
    assert floor == pytest.approx([(0.6 + 0 + 0.6) / 3, (0.3 + 0 + 0.3) / 3, (0.9 + 0 + 0.9) / 3])
    assert retrain_floor(retrain, class_removal=False) == []  # random removal: each seed forgets other samples
    grouped = {("mnist", "class0"): {
        "retrain": retrain,
        "sisa": rows(0.30, 0.25, 0.35),  # below the floor's mean 0.4: as close as another Retrain
        "ngrad": rows(2.0, 2.5, 2.2),
    }}  # fmt: skip
    lines = summary_section(grouped)
    sisa = next(line for line in lines if line.startswith("| SISA"))
    assert "1. 0.30 ± 0.04 (within the floor)" in sisa
    floor_row = next(line for line in lines if line.startswith("| Retrain vs Retrain (the floor)"))
    assert "0.40 ± 0.16 (3 pairs of Retrain seeds)" in floor_row
