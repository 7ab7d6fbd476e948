"""Comparisons that know a tie: two methods compared by the per-seed differences of a quantity (the same seed is the
same split, original and Retrain, so the difference cancels what they share), with the mean difference's 95 %
t-interval over seeds (scipy). A method is "closer" only where the interval lies below 0, "farther" above it, and
"tied" where it holds 0 (or fewer than two seeds are shared). Ranks are shared accordingly: a method's place is one
more than the number of methods surely closer than it. And the retraining noise floor: how far two Retrains of one
split are apart, the gap no method can be told from Retrain by."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from camu_lightning.gaps import gaps_to_retrain

LEVEL = 0.95


@dataclass(frozen=True)
class Paired:
    """The mean of the paired differences (first minus second) over `n` seeds and its interval."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def verdict(self) -> str:
        """For a quantity where lower is better (avg_gap): "closer", "farther" or "tied"."""
        return "closer" if self.high < 0 else "farther" if self.low > 0 else "tied"

    def text(self) -> str:
        return f"Δ {self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def paired_interval(differences: list[float], level: float = LEVEL) -> Paired:
    """The t-interval of the mean difference (n - 1 degrees of freedom); unbounded with fewer than two, a point
    where every difference is the same."""
    values = np.asarray(differences, dtype=float)
    n = len(values)
    if n == 0:
        return Paired(math.nan, -math.inf, math.inf, 0)
    mean = float(values.mean())
    if n < 2:
        return Paired(mean, -math.inf, math.inf, n)
    scale = float(stats.sem(values))
    if scale == 0:
        return Paired(mean, mean, mean, n)
    low, high = stats.t.interval(level, n - 1, loc=mean, scale=scale)
    return Paired(mean, float(low), float(high), n)


def paired(first: dict[int, dict], second: dict[int, dict], quantity: str = "avg_gap") -> Paired:
    """First minus second over the seeds where both have the quantity."""
    seeds = sorted(
        s for s in first.keys() & second.keys() if None not in (first[s].get(quantity), second[s].get(quantity))
    )
    return paired_interval([first[s][quantity] - second[s][quantity] for s in seeds])


def shared_places(contestants: dict[str, dict[int, dict]], quantity: str = "avg_gap") -> dict[str, int]:
    """Each contestant's place: 1 + the number of contestants surely better (lower) than it, so tied ones share."""
    return {
        key: 1
        + sum(paired(seeds, other, quantity).verdict == "farther" for o, other in contestants.items() if o != key)
        for key, seeds in contestants.items()
    }


def retrain_floor(retrains: dict[int, dict], class_removal: bool) -> list[float]:
    """avg_gap between Retrains of one split, one per pair of them. Under class removal the seeds' Retrains share
    their split (the whole class) and differ only in initialisation and batch order; under random removal each seed
    forgets other samples, so the seeds' Retrains say nothing of the floor and none is returned."""
    if not class_removal:
        return []
    finished = [metrics for _, metrics in sorted(retrains.items()) if metrics.get("acc_test") is not None]
    return [gaps_to_retrain(a, b, True)["avg_gap"] for a, b in itertools.combinations(finished, 2)]
