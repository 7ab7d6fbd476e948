"""Figures (matplotlib, no display needed), each written atomically as a PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt  # noqa: E402 -- after choosing the backend
import numpy as np  # noqa: E402

from camu_lightning.files import atomic_write  # noqa: E402


def epsilon_histogram(epsilons: np.ndarray, num_models: int, title: str, path: Path) -> Path:
    """How many forget examples fall in each of forget_quality's buckets (metrics.md section 9, step 5): [0, .5),
    [.5, 1), ... up to E = ceil(ln(N - 1)), each labelled with the points it earns, and one bar for epsilon >= E,
    which earns none."""
    upper = 0.5 * np.arange(1, 2 * math.ceil(math.log(num_models - 1)) + 1)
    bucket = np.searchsorted(upper, epsilons, side="right")
    counts = np.bincount(bucket, minlength=len(upper) + 1)
    labels = [f"[{edge - 0.5:g}, {edge:g})\n{0.5**i:g} pt" for i, edge in enumerate(upper)]
    labels.append(f"≥ {upper[-1]:g}\n0 pt")
    figure, axes = plt.subplots(figsize=(max(6.0, 0.8 * len(labels)), 4.0), layout="constrained")
    positions = np.arange(len(labels))
    axes.bar(positions, counts, color=["tab:blue"] * len(upper) + ["tab:red"])
    axes.set_xticks(positions, labels, fontsize=8)
    axes.set_xlabel("per-example ε (bucket, points earned)")
    axes.set_ylabel("forget examples")
    axes.set_title(title)
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    plt.close(figure)
    return path
