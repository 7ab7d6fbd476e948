"""Comparison tables from the results.json files of finished runs (the latest run per method, precision, scenario
and seed; a precision other than 32-true is shown beside the method's name).

    python -m camu_lightning.bench.tables lightning_logs [--dataset mnist] [--format markdown]

Per (dataset, scenario): each method's table metrics (metrics.md section 1-2), unlearning time, the gap to
Retrain of the same split where known, and the average absolute gap; means and population std over seeds.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from camu_lightning.gaps import read_results, with_gaps

RANDOM_COLUMNS = ("acc_remain", "acc_forget", "acc_test", "mia")
CLASS_COLUMNS = ("acc_test_remain", "acc_test_forget", "mia")
ORDER = (
    "Retrain",
    "CaMU",
    "Finetune",
    "NGrad",
    "BoundaryShrink",
    "BoundaryExpanding",
    "TeacherStudent",
    "SCRUB",
    "SISA",
    "Unroll",
    "SalUn",
    "SSD",
    "L1Sparse",
)


def latest_results(root: Path) -> list[dict]:
    """The newest results.json of each (dataset, scenario, method, precision, seed) under root, each with its gap
    to the newest Retrain of the same split key (`report.with_gaps`, as the run's own table)."""
    runs = read_results(root)
    newest: dict[tuple, dict] = {}
    for results in (run for run in runs if run.get("status", "ok") == "ok"):  # oldest first: newer replaces older
        scenario = (
            f"class {results['forget_classes']}" if results["forget_classes"] else f"random {results['num_forget']}"
        )
        precision = results.get("config", {}).get("trainer", {}).get("precision", "32-true")
        method = results["method"] if precision == "32-true" else f"{results['method']} ({precision})"
        row = with_gaps(results, runs) if "split_key" in results else results
        newest[(results["dataset"], scenario, method, results["seed"])] = row | {"method": method, "scenario": scenario}
    return list(newest.values())


def cell(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    return f"{np.mean(values):.2f}" if len(values) == 1 else f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def tables(results: list[dict], dataset: str | None = None) -> str:
    """Markdown tables, one per (dataset, scenario)."""
    groups: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in results:
        if dataset is None or run["dataset"] == dataset:
            groups[(run["dataset"], run["scenario"])][run["method"]].append(run)
    out = []
    for (name, scenario), methods in sorted(groups.items()):
        columns = CLASS_COLUMNS if scenario.startswith("class") else RANDOM_COLUMNS
        header = ["method", *columns, "time_unlearn_s", "time_prepare_s", *[f"gap_{c}" for c in columns], "avg_gap"]
        out += [f"### {name}, {scenario}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method in sorted(
            methods, key=lambda m: (ORDER.index(m.split(" ")[0]) if m.split(" ")[0] in ORDER else len(ORDER), m)
        ):
            runs = methods[method]
            row = [method, *[cell([r.get(c) for r in runs]) for c in header[1:]]]
            out.append("| " + " | ".join(row) + " |")
        seeds = sorted({r["seed"] for runs in methods.values() for r in runs})
        out += ["", f"seeds: {seeds}; gaps are method − Retrain of the same seed and split (percentage points)", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, nargs="?", default=Path("lightning_logs"))
    parser.add_argument("--dataset")
    args = parser.parse_args(argv)
    print(tables(latest_results(args.root), args.dataset))


if __name__ == "__main__":
    main()
