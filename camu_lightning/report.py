"""What a run reports: the gap to Retrain (metrics.md sections 3-4), found by pairing results files, and the
console table."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.table import Table

from camu_lightning import __version__
from camu_lightning.metrics import ATTACK_KEYS

RANDOM_TABLE = ("acc_remain", "acc_forget", "acc_test", "mia")
CLASS_TABLE = ("acc_test_remain", "acc_test_forget", "mia")


def gaps_to_retrain(results: dict[str, Any], retrain: dict[str, Any], class_removal: bool) -> dict[str, float]:
    """gap_<metric> = method - Retrain (percentage points, signed) for every metric both report; avg_gap = mean
    |gap| over the scenario's table metrics only; rte = Retrain's unlearning time / the method's (a speed-up, as
    metrics.md section 3 defines it); for a method with training-time state (SISA, Unroll), rte_with_prepare also
    charges it its preparation time, which is where Unroll's cost lies (its unlearning step takes milliseconds)."""
    keys = CLASS_TABLE if class_removal else RANDOM_TABLE
    gaps = {f"gap_{key}": results[key] - retrain[key] for key in keys}
    gaps["avg_gap"] = sum(abs(gap) for gap in gaps.values()) / len(keys)
    shared = (key for key in (*RANDOM_TABLE, *CLASS_TABLE, *ATTACK_KEYS) if key in results and key in retrain)
    gaps |= {f"gap_{key}": results[key] - retrain[key] for key in shared}  # e.g. acc_forget under class removal
    gaps |= tug_of_war(results, retrain)
    gaps["rte"] = (
        retrain["time_unlearn_s"] / results["time_unlearn_s"] if results["time_unlearn_s"] > 0 else float("inf")
    )
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


def run_results(method: Any, datamodule: Any, seed: int, prepared: dict[str, Any]) -> dict[str, Any]:
    """results.json of a finished run (before its gaps and config): identity, split sizes, the method's own numbers,
    where its starting point came from, and the test metrics."""
    return {
        "status": "ok",
        "method": type(method).__name__,
        "dataset": datamodule.hparams.dataset or "data.train/data.test",
        "seed": seed,
        "version": __version__,
        **datamodule.summary(),
        **method.unlearning_summary(),
        **prepared,
        **method.evaluation["test"],
    }


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


def plain(value: Any) -> Any:
    """A config as JSON-ready values."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def results_table(results: dict[str, Any]) -> Table:
    """Original vs unlearned metrics (percent), the gap to Retrain where known, and the times."""
    keys = [
        key
        for key in ("acc_remain", "acc_forget", "acc_test", "acc_test_remain", "acc_test_forget", "mia", *ATTACK_KEYS)
        if key in results
    ]
    scenario = (
        f"classes {results['forget_classes']}" if results["forget_classes"] else f"{results['num_forget']} samples"
    )
    table = Table(title=f"{results['method']} on {results['dataset']}, forgetting {scenario} (seed {results['seed']})")
    has_gap = "avg_gap" in results
    for column in ("metric", "original", "unlearned", *(["Retrain", "gap to Retrain"] if has_gap else [])):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key in keys:
        original = results.get(f"original_{key}")
        row = [key, "—" if original is None else f"{original:.2f}", f"{results[key]:.2f}"]
        if has_gap:  # Retrain's value is the unlearned one less the gap
            gap = results.get(f"gap_{key}")
            row += ["", ""] if gap is None else [f"{results[key] - gap:.2f}", f"{gap:+.2f}"]
        table.add_row(*row)
    if has_gap:
        table.add_row("avg_gap", "", "", "", f"{results['avg_gap']:.2f}")
        table.add_row("ToW", "", "", "", f"{results['tow']:.4f}")
    times = [f"{results['retrain_time_unlearn_s']:.1f}", f"RTE {results['rte']:.1f}x"] if has_gap else []
    table.add_row("time_unlearn_s", "", f"{results['time_unlearn_s']:.1f}", *times)
    if "time_prepare_s" in results:
        table.add_row("time_prepare_s", "", f"{results['time_prepare_s']:.1f}", *(["", ""] if has_gap else []))
    return table
