"""Rows to numbers over seeds (metrics.md sections 4 and 7): per-seed gaps to the Retrain of the same dataset,
scenario and seed first, then mean, population std (ddof 0) and the 95 % t interval of each quantity."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from camu_lightning.gaps import ATTACK_KEYS, CLASS_TABLE, RANDOM_TABLE, gaps_to_retrain

PER_SEED_GAPS = ("avg_gap", "tow", "tow_mia", "rte", "rte_with_prepare")


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # population (ddof 0), as the official write_results
    ci95: float  # half-width t_{0.975, n-1} * sem (ddof 1); NaN for n = 1

    def text(self, digits: int = 2) -> str:
        if self.n == 0:
            return "—"
        # Unroll's closed-form step (~0.3 ms) puts its RTE near 10^6x: three significant digits read at a glance.
        spec = f".{digits}f" if abs(self.mean) < 1e4 else ".2e"
        if self.n == 1:
            return f"{self.mean:{spec}}"
        return f"{self.mean:{spec}} ± {self.std:{spec}}"


def summarise(values: list[float]) -> Summary:
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return Summary(0, math.nan, math.nan, math.nan)
    array = np.asarray(values)
    half = float(stats.t.ppf(0.975, len(array) - 1) * stats.sem(array)) if len(array) > 1 else math.nan
    return Summary(len(array), float(array.mean()), float(array.std()), half)


ROW_KEYS = ("dataset", "scenario", "method_key", "seed", "metrics")


def read_row(path: Path) -> dict[str, Any]:
    """One row, checked: an unreadable file, or JSON that is not a row, is a one-line error naming the file."""
    try:
        row = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"row {path} is unreadable ({error}); delete it to rerun its cell") from error
    if not isinstance(row, dict):
        raise ValueError(
            f"row {path} is a JSON {type(row).__name__}, not a row (an object); delete it to rerun its cell"
        )
    missing = [key for key in ROW_KEYS if key not in row]
    if missing or not isinstance(row["metrics"], dict):
        what = f"lacks {', '.join(missing)}" if missing else "has metrics that are not an object"
        raise ValueError(f"row {path} {what}, so it is not a row; delete it to rerun its cell")
    return row


def read_rows(results: Path) -> list[dict[str, Any]]:
    """Every row under the results folder (a file that is not a row is named in the error)."""
    return [read_row(path) for path in sorted(results.glob("*/*/*/seed*.json"))]


def table_metrics(scenario: str) -> tuple[str, ...]:
    return RANDOM_TABLE if scenario.startswith("random") else CLASS_TABLE  # random, random15, ...; class0, ...


def finished_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of runs that finished; a diverged run's row holds no metrics to aggregate (`diverged_runs`)."""
    return [row for row in rows if row["metrics"].get("status", "ok") == "ok"]


def diverged_runs(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[int, str]]]:
    """{(dataset, scenario): {method_key: {seed: the run's error}}} of the rows whose run diverged."""
    found: dict[tuple[str, str], dict[str, dict[int, str]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        if row["metrics"].get("status") == "diverged":
            found[(row["dataset"], row["scenario"])][row["method_key"]][row["seed"]] = row["metrics"]["error"]
    return found


def per_seed(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[int, dict[str, float]]]]:
    """{(dataset, scenario): {method_key: {seed: metrics plus gaps to that seed's Retrain, and `sitting`: the boot id
    of the machine that ran the row (None before it was recorded)}}}."""
    grouped: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for row in finished_rows(rows):  # the boot id rides along: times compare only within one sitting (presets)
        metrics = dict(row["metrics"]) | {"sitting": row.get("machine", {}).get("boot")}
        grouped[(row["dataset"], row["scenario"])][row["method_key"]][row["seed"]] = metrics
    for (_, scenario), methods in grouped.items():
        retrain = methods.get("retrain", {})
        for key, seeds in methods.items():
            for seed, metrics in seeds.items():
                if key != "retrain" and seed in retrain:
                    metrics |= gaps_to_retrain(metrics, retrain[seed], not scenario.startswith("random"))
    return grouped


def summary_table(grouped) -> list[dict[str, Any]]:
    """Long form: one record per (dataset, scenario, method, quantity) with its Summary over seeds."""
    records = []
    for (dataset, scenario), methods in sorted(grouped.items()):
        quantities = [*table_metrics(scenario), *ATTACK_KEYS, "time_unlearn_s", "time_prepare_s"]
        quantities += [f"gap_{q}" for q in (*table_metrics(scenario), *ATTACK_KEYS)] + list(PER_SEED_GAPS)
        for method, seeds in methods.items():
            for quantity in quantities:
                summary = summarise([metrics.get(quantity) for metrics in seeds.values()])
                if summary.n:
                    records.append({"dataset": dataset, "scenario": scenario, "method": method,
                                    "quantity": quantity, "seeds": sorted(seeds), "summary": summary})  # fmt: skip
    return records


def average_diff(grouped) -> dict[str, float]:
    """The paper's Average Diff (Table 4): mean over (dataset, scenario) cells of |mean mia - mean Retrain mia|,
    over the cells where both exist."""
    differences: dict[str, list[float]] = defaultdict(list)
    for methods in grouped.values():
        if "retrain" not in methods:
            continue
        retrain = np.mean([metrics["mia"] for metrics in methods["retrain"].values()])
        for method, seeds in methods.items():
            if method != "retrain":
                differences[method].append(abs(np.mean([metrics["mia"] for metrics in seeds.values()]) - retrain))
    return {method: float(np.mean(values)) for method, values in differences.items()}
