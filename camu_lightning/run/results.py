"""What a run reports: its results dict (results.json before the gaps) and the console table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from camu_lightning import __version__
from camu_lightning.gaps import ATTACK_KEYS


def run_results(
    method: Any, datamodule: Any, times: dict[str, Any], before: dict[str, Any], test: dict[str, float]
) -> dict[str, Any]:
    """results.json of a finished run (before its gaps and config): identity, split sizes, the unlearning times
    (`times`: wall and CPU seconds, threads, device) and the method's own numbers, where its starting point came from
    and its evaluation (`before`: a cached Retrain's stored times replace the clock's), and the test metrics."""
    return {
        "status": "ok",
        "method": type(method).__name__,
        "dataset": datamodule.hparams.dataset or "data.train/data.test",
        "seed": int(method.hparams.seed),
        "version": __version__,
        **datamodule.summary(),
        **times,
        **method.unlearning_summary(),
        **before,
        **test,
    }


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
