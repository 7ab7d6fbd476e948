"""Figures (matplotlib, no display needed), each written atomically as a PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt  # noqa: E402 -- after choosing the backend
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from camu_lightning.utils.files import atomic_write  # noqa: E402


def epsilon_histogram(epsilons: np.ndarray, num_models: int, title: str, path: Path) -> Path:
    """How many forget examples fall in each of forget_quality's buckets (metrics.md section 9, step 5): [0, .5),
    [.5, 1), ... up to E = ceil(ln(N - 1)), each labelled with the points it earns, and one bar for epsilon >= E,
    which earns none."""
    upper = 0.5 * np.arange(1, 2 * math.ceil(math.log(num_models - 1)) + 1)
    bucket = np.searchsorted(upper, epsilons, side="right")
    counts = np.bincount(bucket, minlength=len(upper) + 1)
    points = ["1"] + [f"1/{2**i}" for i in range(1, len(upper))]  # 1/128 reads where 0.0078125 crowds its neighbour
    labels = [f"[{edge - 0.5:g}, {edge:g})\n{earned} pt" for earned, edge in zip(points, upper, strict=True)]
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


def gap_heatmap(
    methods: dict[str, dict[int, dict[str, float]]],
    metrics: tuple[str, ...],
    title: str,
    path: Path,
    limit: float = 10.0,
) -> Path:
    """Method x metric: each method's gap to Retrain (method − Retrain, points, mean over seeds) written in its cell,
    coloured on a diverging scale that saturates at ±`limit`, so a wrecked default does not wash out the rest; the
    last column is avg_gap (mean |gap|)."""
    names = list(methods)
    columns = [f"gap_{metric}" for metric in metrics] + ["avg_gap"]
    values = np.array([[np.mean([seed[c] for seed in methods[name].values() if c in seed] or [np.nan])
                        for c in columns] for name in names])  # fmt: skip
    figure, axes = plt.subplots(figsize=(1.1 * len(columns) + 2.6, 0.32 * len(names) + 1.3), layout="constrained")
    axes.imshow(np.clip(values, -limit, limit), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for row, column in np.ndindex(values.shape):
        value = values[row, column]
        text = "—" if np.isnan(value) else f"{value:+.2f}" if column < len(metrics) else f"{value:.2f}"
        axes.text(column, row, text, ha="center", va="center", fontsize=7,
                  color="white" if abs(value) > 0.6 * limit else "black")  # fmt: skip
    axes.set_xticks(range(len(columns)), [*metrics, "avg_gap"], fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.xaxis.tick_top()
    axes.set_title(title, fontsize=9)
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    plt.close(figure)
    return path


def efficiency_frontier(
    points: dict[str, tuple[float, float]], retrain_time: float, title: str, path: Path, limit: float = 10.0
) -> Path:
    """avg_gap against unlearning time (log axis), one marker per method (means over seeds), named in a legend beside
    the axes so no label covers another; Retrain is the star at gap 0. The gap axis ends just above the largest gap
    under `limit`: a method beyond it (a wrecked default) is a triangle on the top edge, its gap in its legend entry."""
    figure, axes = plt.subplots(figsize=(8.5, 4.6), layout="constrained")
    finite = {name: point for name, point in points.items() if np.isfinite(point[1])}
    top = 1.15 * max([gap for _, gap in finite.values() if gap <= limit] or [1.0])
    colours, markers = plt.get_cmap("tab20").colors, "osDvP<>phX"
    for index, (name, (seconds, gap)) in enumerate(finite.items()):
        beyond = gap > top
        axes.scatter(seconds, min(gap, top), s=42, clip_on=False, color=colours[index % len(colours)],
                     marker="^" if beyond else markers[(index + index // len(colours)) % len(markers)],
                     label=f"{name}: {gap:.1f}, off the chart" if beyond else name)  # fmt: skip
    axes.scatter([retrain_time], [0.0], marker="*", s=180, color="black", label="Retrain", clip_on=False, zorder=3)
    axes.set_ylim(0, top)
    axes.set_xscale("log")
    # plain seconds at 1, 2 and 5 of each decade: the default labels every minor tick of a short span, overlapping
    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")
    axes.xaxis.set_major_formatter(plain)
    axes.xaxis.set_minor_locator(ticker.LogLocator(base=10, subs=(2.0, 5.0)))
    axes.xaxis.set_minor_formatter(plain)
    axes.set_xlabel("unlearning time + training-time preparation (s, log scale)")
    axes.set_ylabel("avg_gap to Retrain (points)")
    axes.set_title(title, fontsize=10, pad=10)  # clear of the off-chart triangles on the top edge
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    plt.close(figure)
    return path


def overview_frontiers(
    panels: dict[str, tuple[dict[str, tuple[float, float]], float]], path: Path, limit: float = 10.0
) -> Path:
    """One efficiency panel per setting, side by side, with one legend: a method keeps its colour and marker in every
    panel (its name without "(tuned)"); the gap axis of each panel ends above its largest gap under `limit`."""
    names = sorted({name.removesuffix(" (tuned)") for points, _ in panels.values() for name in points})
    colours, markers = plt.get_cmap("tab20").colors, "osDvP<>phX"
    style = {name: (colours[i % len(colours)], markers[(i + i // len(colours)) % len(markers)])
             for i, name in enumerate(names)}  # fmt: skip
    figure, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels) + 2.2, 3.6), layout="constrained",
                                squeeze=False)  # fmt: skip
    for axis, (title, (points, retrain_time)) in zip(axes[0], panels.items(), strict=True):
        finite = {name: point for name, point in points.items() if np.isfinite(point[1])}
        top = 1.15 * max([gap for _, gap in finite.values() if gap <= limit] or [1.0])
        for name, (seconds, gap) in finite.items():
            colour, marker = style[name.removesuffix(" (tuned)")]
            axis.scatter(seconds, min(gap, top), s=36, color=colour, marker="^" if gap > top else marker,
                         clip_on=False)  # fmt: skip
        axis.scatter([retrain_time], [0.0], marker="*", s=150, color="black", clip_on=False, zorder=3)
        axis.set_ylim(0, top)
        axis.set_xscale("log")
        axis.set_title(title, fontsize=9, pad=8)
        axis.set_xlabel("time (s, log)", fontsize=8)
    axes[0][0].set_ylabel("avg_gap to Retrain (points)")
    # Legend entries drawn from the styles: a method's first point may be an off-the-chart triangle.
    handles = [Line2D([], [], linestyle="", marker=style[name][1], color=style[name][0], label=name) for name in names]
    handles.append(Line2D([], [], linestyle="", marker="*", markersize=11, color="black", label="Retrain"))
    axes[0][-1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    plt.close(figure)
    return path


def relearn_curves(curves: dict[str, dict[str, list[float]]], title: str, path: Path, limit: float = 5.0) -> Path:
    """|Δacc_forget| and |Δacc_remain| per relearning epoch (means over seeds), one line per method (paper
    Figures 4-5). Top row: Retrain, CaMU and every method within `limit` points throughout, on a scale where their
    differences show; bottom row (when any): the rest, on their own scale."""
    always = ("Retrain", "CaMU")
    largest = {
        name: max(abs(v) for v in (*curve["acc_forget"], *curve["acc_remain"])) for name, curve in curves.items()
    }
    close = {name: curve for name, curve in curves.items() if name in always or largest[name] <= limit}
    apart = {name: curve for name, curve in curves.items() if name not in close}
    rows = [(f"Retrain, CaMU and methods within {limit:g} points", close)]
    rows += [(f"beyond {limit:g} points", apart)] if apart else []
    figure, axes = plt.subplots(len(rows), 2, figsize=(11.0, 3.4 * len(rows)), layout="constrained", squeeze=False)
    for row, (label, group) in enumerate(rows):
        for column, key in enumerate(("acc_forget", "acc_remain")):
            axis = axes[row][column]
            for name, curve in group.items():
                axis.plot(range(len(curve[key])), np.abs(curve[key]), marker="o", markersize=3, label=name)
            axis.set_title(f"|Δ{key}|: {label}", fontsize=9)
            axis.set_xlabel("relearning epoch on D_r")
            axis.set_ylabel("points")
        axes[row][1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.suptitle(title)
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    plt.close(figure)
    return path


def epoch_curve(epochs: list[int], gaps: list[tuple[float, float]], rtes: list[tuple[float, float]],
                max_gap: float, min_rte: float, chosen: int | None, title: str, path: Path):  # fmt: skip
    """CaMU's epochs against the fast preset's two conditions, a panel each: avg_gap to Retrain (at or below the
    recipe's mean) and RTE (at least `min_rte`), mean ± std over seeds, the chosen epoch count ringed."""
    figure, (gap_axes, rte_axes) = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
    for axes, values, line, label in ((gap_axes, gaps, max_gap, f"10-epoch recipe's mean ({max_gap:.2f})"),
                                      (rte_axes, rtes, min_rte, f"{min_rte:g}× faster than Retrain")):  # fmt: skip
        means, stds = [v[0] for v in values], [v[1] for v in values]
        axes.errorbar(epochs, means, yerr=stds, marker="o", capsize=3)
        axes.axhline(line, color="tab:red", linestyle="--", label=label)
        if chosen is not None:
            k = epochs.index(chosen)
            axes.plot([chosen], [means[k]], "o", markersize=14, markerfacecolor="none", color="tab:green",
                      label=f"preset: {chosen} epoch{'s' if chosen > 1 else ''}")  # fmt: skip
        axes.set_xlabel("CaMU epochs")
        axes.set_xticks(epochs)
        axes.legend(fontsize=8)
    gap_axes.set_ylabel("avg_gap to Retrain (points; lower: closer)")
    rte_axes.set_ylabel("RTE (×, one sitting; higher: faster)")
    figure.suptitle(title)
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    plt.close(figure)
    return path
