"""The gap of a run to its Retrain (metrics.md sections 3-4, 6), and the pairing of results files; plain Python, so
`camu report` and the grid read rows without importing torch."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The stronger attacks' keys (metrics/attacks.py computes them), named here for readers of rows.
ATTACK_KEYS = ("mia_loss_lr", "mia_svc_efficacy", "mia_auc", "mia_tpr_at_1fpr")
RANDOM_TABLE = ("acc_remain", "acc_forget", "acc_test", "mia")
CLASS_TABLE = ("acc_test_remain", "acc_test_forget", "mia")


def gaps_to_retrain(results: dict[str, Any], retrain: dict[str, Any], class_removal: bool) -> dict[str, float]:
    """gap_<metric> = method - Retrain (percentage points, signed) for every metric both report; avg_gap = mean
    |gap| over the scenario's table metrics only; rte = Retrain's unlearning time / the method's (a speed-up, as
    metrics.md section 3 defines it), and where both ran on CPU rte_cpu from their CPU seconds; for a method with
    training-time state (SISA, Unroll), rte_with_prepare also charges it its preparation time, which is where
    Unroll's cost lies (its unlearning step takes milliseconds)."""
    keys = CLASS_TABLE if class_removal else RANDOM_TABLE
    gaps = {f"gap_{key}": results[key] - retrain[key] for key in keys}
    gaps["avg_gap"] = sum(abs(gap) for gap in gaps.values()) / len(keys)
    shared = (key for key in (*RANDOM_TABLE, *CLASS_TABLE, *ATTACK_KEYS) if key in results and key in retrain)
    gaps |= {f"gap_{key}": results[key] - retrain[key] for key in shared}  # e.g. acc_forget under class removal
    gaps |= tug_of_war(results, retrain)
    gaps["rte"] = (
        retrain["time_unlearn_s"] / results["time_unlearn_s"] if results["time_unlearn_s"] > 0 else float("inf")
    )
    on_cpu = all(run.get("unlearn_device") == "cpu" and run.get("time_unlearn_cpu_s") for run in (results, retrain))
    if on_cpu:  # CPU seconds: steadier than wall time where other work shares the machine
        gaps["rte_cpu"] = retrain["time_unlearn_cpu_s"] / results["time_unlearn_cpu_s"]
    if "time_prepare_s" in results:
        gaps["rte_with_prepare"] = retrain["time_unlearn_s"] / (results["time_unlearn_s"] + results["time_prepare_s"])
    gaps["retrain_time_unlearn_s"] = retrain["time_unlearn_s"]
    return gaps


def tug_of_war(results: dict[str, Any], retrain: dict[str, Any]) -> dict[str, float]:
    """ToW (metrics.md section 6): the product over forget, remain and test accuracy of 1 - |gap| / 100, in [0, 1],
    1 = indistinguishable from Retrain; `tow_mia` takes the forget factor from `mia_svc_efficacy` instead."""
    factors = {key: 1 - abs(results[key] - retrain[key]) / 100 for key in ("acc_forget", "acc_remain", "acc_test")}
    tow = {"tow": factors["acc_forget"] * factors["acc_remain"] * factors["acc_test"]}
    if "mia_svc_efficacy" in results and "mia_svc_efficacy" in retrain:
        forget = 1 - abs(results["mia_svc_efficacy"] - retrain["mia_svc_efficacy"]) / 100
        tow["tow_mia"] = forget * factors["acc_remain"] * factors["acc_test"]
    return tow


def read_results(root: Path) -> list[dict[str, Any]]:
    """Every readable results.json under root, oldest first (by modification time)."""
    found = []
    for path in root.glob("**/results.json"):
        try:
            found.append((path.stat().st_mtime, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue  # a run being written, or not ours: it pairs with nothing
    return [results for _, results in sorted(found, key=lambda item: item[0])]


def with_gaps(run: dict[str, Any], runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The run plus its gaps to the newest finished Retrain among `runs` with the same `split_key` (same data,
    network, forget set and run seed), where there is one."""
    if run["method"] == "Retrain":
        return run
    partners = [
        other
        for other in runs
        if other.get("method") == "Retrain"
        and other.get("status") == "ok"
        and other.get("split_key") == run["split_key"]
    ]
    if not partners:
        return run
    return run | gaps_to_retrain(run, partners[-1], bool(run["forget_classes"]))
