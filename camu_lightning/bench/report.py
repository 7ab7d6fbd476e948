"""`camu report`: the reproduction report from the committed rows, without training.

    camu report                          # results/ -> docs/reproduction.md, docs/tables/*.csv, docs/figures/*.png
    camu report --grid configs/bench/paper.yaml   # also lists the grid's cells that have no row yet

Per (dataset, scenario): the paper's layout (methods as columns, mean ± population std over seeds), the gaps to
Retrain computed per seed then aggregated, avg_gap, ToW, RTE, the attacks, 95 % intervals in the CSV; the paper's
Average Diff; the forget-quality studies found under results/forget_quality; the machines and the grid's wall time;
and docs/differences.md, the account of where and why we differ from the paper.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from camu_lightning.bench.aggregate import average_diff, diverged_runs, per_seed, read_rows, summarise, table_metrics
from camu_lightning.bench.claims import claims_section
from camu_lightning.bench.grid import cells, read_grid
from camu_lightning.bench.naming import (
    ABLATIONS,
    GAP_COLUMNS,
    MAIN_SCENARIOS,
    display,
    markdown_table,
    ordered,
    plain,
    setting_order,
)
from camu_lightning.bench.originals import check_one_original, provenance_line
from camu_lightning.bench.plots import efficiency_frontier, gap_heatmap
from camu_lightning.bench.sections import (
    PRESET_SEEDS,
    ablation_table,
    fast_preset,
    forget_quality_line,
    forget_quality_section,
    relearn_section,
)
from camu_lightning.bench.summary import (
    README_BEGIN,
    README_END,
    better_variants,
    diverged_seeds,
    overview_figure,
    readme_with_summary,
    summary_csv,
    summary_section,
)
from camu_lightning.gaps import ATTACK_KEYS
from camu_lightning.utils.files import atomic_write
from camu_lightning.utils.terminal import console, print_error, set_up_terminal


def scenario_section(dataset: str, scenario: str, methods, docs: Path, presets: Path | None,
                     diverged=None) -> list[str]:  # fmt: skip
    """One setting: the paper's table, the attacks, the gaps to Retrain, RQ2, RQ3 and the fast preset where their
    rows ran, and the figures; `diverged`: {method_key: {seed: error}} of its runs that diverged."""
    keys = [key for key in ordered(methods) if plain(key) and key not in ABLATIONS]  # ablations: RQ2's table
    seeds = sorted({seed for seeds in methods.values() for seed in seeds})

    def rows(columns, wanted=keys) -> list[list[str]]:  # a method per row, mean ± std over its seeds per column
        return [[display(k), *(summarise([m.get(c) for m in methods[k].values()]).text() for c in columns)]
                for k in wanted]  # fmt: skip

    paper = [*table_metrics(scenario), "time_unlearn_s", "time_prepare_s"]
    main_rows = [[row[0], str(len(methods[k])), *row[1:]] for k, row in zip(keys, rows(paper), strict=True)]
    count = f"Seeds {seeds} (column `seeds`: how many each method holds); mean ± std (ddof 0) over them; percentages."
    lines = [f"## {dataset}, {scenario}", "", count, ""]
    lines += markdown_table(["method", "seeds", *paper], main_rows) + [""]
    if diverged:  # an outcome, not a missing cell: said here, and the method's numbers are over its other seeds
        errors = {key: sorted({error.split(";")[0] for error in seeds.values()}) for key, seeds in diverged.items()}
        runs = "; ".join(f"{display(key)} {diverged_seeds(seeds)} ({', '.join(errors[key])})"
                         for key, seeds in sorted(diverged.items()))  # fmt: skip
        lines += [f"Diverged runs (kept as rows, left out of every mean above and below): {runs}.", ""]
    lines += ["The stronger membership-inference attacks (metrics.md section 5):", ""]
    lines += markdown_table(["method", *ATTACK_KEYS], rows(ATTACK_KEYS)) + [""]
    compared_keys = [k for k in keys if k != "retrain"]
    if compared_keys:  # a setting with only its Retrain yet has no gaps to show
        lines += [
            "Gaps to the Retrain of the same seed, per seed then aggregated (RTE: Retrain's time / the method's "
            "unlearning time; rte_with_prepare also counts the training-time state of SISA and Unroll):",
            "",
        ]
        lines += markdown_table(["method", *GAP_COLUMNS], rows(GAP_COLUMNS, compared_keys)) + [""]
    lines += ablation_table(methods, scenario) + relearn_section(methods, dataset, scenario, docs)
    lines += fast_preset(methods, dataset, scenario, docs, presets)
    if not compared_keys:
        return lines
    figures = docs / "figures"
    stem = f"{dataset}_{scenario}"
    compared = {display(k): methods[k] for k in compared_keys}
    title = f"{dataset} {scenario}: method − Retrain (points, mean over seeds)"
    gap_heatmap(compared, table_metrics(scenario), title, figures / f"{stem}_gaps.png")
    points = {display(k): (float(np.mean([m["time_unlearn_s"] + m.get("time_prepare_s", 0.0)
                                           for m in methods[k].values()])),
                           float(np.mean([m.get("avg_gap", np.nan) for m in methods[k].values()])))
              for k in compared_keys}  # fmt: skip
    retrain_time = float(np.mean([m["time_unlearn_s"] for m in methods.get("retrain", {}).values()] or [np.nan]))
    efficiency_frontier(points, retrain_time, f"{dataset} {scenario}: closeness vs time", figures / f"{stem}_time.png")
    lines += [
        f"![gaps](figures/{stem}_gaps.png)",
        "",
        "*Which methods stay close to Retrain, metric by metric? Each cell: method − Retrain in points, mean "
        "over seeds (the last column: avg_gap, mean |gap|); the colour saturates at ±10 points, the number is "
        "exact.*",
        "",
        f"![frontier](figures/{stem}_time.png)",
        "",
        "*Which methods are both close to Retrain and fast? avg_gap against unlearning time plus any training-time "
        "preparation (SISA, Unroll; log axis); Retrain is the star at gap 0: lower left is better; a triangle on the "
        "top edge is off the chart, its gap in the legend.*",
        "",
    ]
    return lines


def sittings(rows: list[dict]) -> list[str]:
    """How many machine boots ran the rows, and the seed tables whose rows a boot change may have split: their
    times, RTE and (through float kernels) digits compare only within one sitting."""
    boots: dict[tuple[str, str, int], set[str | None]] = {}
    for r in rows:
        boots.setdefault((r["dataset"], r["scenario"], r["seed"]), set()).add(r["machine"].get("boot"))
    recorded = set().union(*boots.values()) - {None}
    unrecorded = sum(1 for r in rows if r["machine"].get("boot") is None)
    split = [f"{d} {s} seed {k}" for (d, s, k), b in sorted(boots.items()) if len(b) > 1]
    return [f"Sittings (machine boots): {len(recorded)} recorded; {unrecorded} rows predate the record. Times, RTE "
            f"and digits compare within one sitting; seed tables spanning several (or recorded and unrecorded "
            f"rows): {', '.join(split) or 'none'}.", ""]  # fmt: skip


def build(results: Path, docs: Path, grids: list[Path], configs: Path, fast_presets: bool = False,
          readme: Path | None = None) -> Path:  # fmt: skip
    """docs/reproduction.md, tables/ and figures/ from the rows under `results`; each grid's cells without a row are
    listed as missing; `readme`: a file whose marked block gets the summary table."""
    rows = read_rows(results)
    if not rows:
        raise ValueError(f"no rows under {results}; run `camu bench --grid ...` first")
    check_one_original(rows)
    grid_cells = {grid: cells(read_grid(grid), configs) for grid in grids}  # a bad grid fails before any write
    grouped = per_seed(rows)
    lines = ["# Reproduction report", "", "Generated by `make report` (`camu report`) from the rows committed under "
             "`results/`; nothing here was trained by the report.", ""]  # fmt: skip
    settings = sorted(grouped, key=setting_order)
    main = {setting: grouped[setting] for setting in settings if setting[1] in MAIN_SCENARIOS}
    appendix = {setting: grouped[setting] for setting in settings if setting[1] not in MAIN_SCENARIOS}
    diverged = diverged_runs(rows)
    summary = summary_section(main, diverged=diverged) if main else []
    readme_text = None if readme is None else readme_with_summary(readme, summary)  # checked before any write
    lines += summary + forget_quality_line(results)
    lines += claims_section(main, list(main), display, better_variants(main)) + overview_figure(main, docs)
    machines = sorted({f"{r['machine']['device']} ({r['machine']['cpus']} CPUs, torch {r['machine']['torch']})"
                       for r in rows})  # fmt: skip
    wall = sum(r.get("wall_s", 0.0) for r in rows)
    lines += [f"Rows: {len(rows)}; machines: {'; '.join(machines)}; summed run wall time {wall / 3600:.2f} h.", ""]
    lines += ["The runs behind the rows, where `camu bench` ran them: `tensorboard --logdir lightning_logs/bench`; its "
              "HPARAMS tab lists every run's settings (method, variant, dataset, scenario, seed, `model/*`) beside its "
              "final numbers (`final/*`: accuracies, attacks, avg_gap, ToW, RTE), to sort and filter.", ""]  # fmt: skip
    lines += sittings(rows) + provenance_line(rows)
    for (dataset, scenario), methods in main.items():
        presets = configs if fast_presets else None
        lines += scenario_section(dataset, scenario, methods, docs, presets, diverged[(dataset, scenario)])
    diff = {key: value for key, value in average_diff(main).items() if plain(key)}
    lines += ["## Average Diff (paper Table 4: MIA only, mean over cells of |method − Retrain|)", ""]
    lines += markdown_table(["method", "Average Diff"], [[display(k), f"{diff[k]:.2f}"] for k in ordered(diff)]) + [""]
    if appendix:
        lines += summary_section(appendix, "## Appendix: the paper's Tables 8–11 settings (random 15 % and 20 %, "
                                 "classes 1 and 2)", diverged)  # fmt: skip
        for (dataset, scenario), methods in appendix.items():
            lines += scenario_section(dataset, scenario, methods, docs, None, diverged[(dataset, scenario)])
    lines += forget_quality_section(results, docs)
    for grid, found in grid_cells.items():
        missing: dict[Path, list[int]] = {}  # a row folder per line, with the seeds it lacks
        for c in found:
            if not (results / c.row).is_file():
                missing.setdefault(c.row.parent, []).append(c.seed)
        lines += [f"## Missing cells of {grid}", ""]
        lines += [f"- {folder}: seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
                  for folder, seeds in missing.items()] or ["None: every cell has its row."]  # fmt: skip
        lines += [""]
    differences = docs / "differences.md"
    if differences.is_file():
        lines += [differences.read_text().strip(), ""]
    atomic_write(docs / "tables" / "summary.csv", lambda t: t.write_text(summary_csv(grouped)))
    out = docs / "reproduction.md"
    atomic_write(out, lambda temporary: temporary.write_text("\n".join(lines)))
    if readme is not None:
        atomic_write(readme, lambda temporary: temporary.write_text(readme_text))
    return out


def main(args: list[str]) -> None:
    set_up_terminal()
    parser = argparse.ArgumentParser(prog="camu report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="folder of the committed rows")
    parser.add_argument("--docs", default="docs", help="where reproduction.md, tables/ and figures/ go")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        type=Path,
        help="a grid YAML whose cells without a row are listed as missing (repeatable: one section per grid)",
    )
    parser.add_argument("--configs", default="configs", help="folder of the method configs")
    parser.add_argument(
        "--fast_presets",
        action="store_true",
        help=f"write configs/<dataset>_camu_fast.yaml from the epoch sweep (once it has {PRESET_SEEDS} seeds)",
    )
    parser.add_argument("--readme", type=Path, help="also write the summary table between this file's markers "
                        f"({README_BEGIN} ... {README_END})")  # fmt: skip
    options = parser.parse_args(args)
    try:
        results, docs, configs = Path(options.results), Path(options.docs), Path(options.configs)
        out = build(results, docs, options.grid, configs, options.fast_presets, options.readme)
    except ValueError as error:
        print_error(str(error))
    console.print(f"report: {out}", highlight=False)
