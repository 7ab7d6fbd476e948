"""What a run reports: the gap to Retrain (metrics.md sections 3-4) and the console table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

RANDOM_TABLE = ("acc_remain", "acc_forget", "acc_test", "mia")
CLASS_TABLE = ("acc_test_remain", "acc_test_forget", "mia")


def gaps_to_retrain(results: dict[str, Any], retrain: dict[str, Any], class_removal: bool) -> dict[str, float]:
    """gap_<metric> = method - Retrain (percentage points, signed); avg_gap = mean |gap| over the scenario's table
    metrics; rte = Retrain's unlearning time / the method's (a speed-up)."""
    keys = CLASS_TABLE if class_removal else RANDOM_TABLE
    gaps = {f"gap_{key}": results[key] - retrain[key] for key in keys}
    gaps["avg_gap"] = sum(abs(gap) for gap in gaps.values()) / len(keys)
    gaps["rte"] = (
        retrain["time_unlearn_s"] / results["time_unlearn_s"] if results["time_unlearn_s"] > 0 else float("inf")
    )
    gaps["retrain_time_unlearn_s"] = retrain["time_unlearn_s"]
    return gaps


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
        for key in ("acc_remain", "acc_forget", "acc_test", "acc_test_remain", "acc_test_forget", "mia")
        if key in results
    ]
    scenario = (
        f"classes {results['forget_classes']}" if results["forget_classes"] else f"{results['num_forget']} samples"
    )
    table = Table(title=f"{results['method']} on {results['dataset']}, forgetting {scenario} (seed {results['seed']})")
    has_gap = "avg_gap" in results
    for column in ("metric", "original", "unlearned", *(["gap to Retrain"] if has_gap else [])):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key in keys:
        original = results.get(f"original_{key}")
        row = [key, "—" if original is None else f"{original:.2f}", f"{results[key]:.2f}"]
        table.add_row(*row, *([f"{results[f'gap_{key}']:+.2f}" if f"gap_{key}" in results else ""] if has_gap else []))
    if has_gap:
        table.add_row("avg_gap", "", "", f"{results['avg_gap']:.2f}")
    table.add_row(
        "time_unlearn_s", "", f"{results['time_unlearn_s']:.1f}", *([f"RTE {results['rte']:.1f}x"] if has_gap else [])
    )
    if "time_prepare_s" in results:
        table.add_row("time_prepare_s", "", f"{results['time_prepare_s']:.1f}", *([""] if has_gap else []))
    return table
