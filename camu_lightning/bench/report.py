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
import csv
import io
import json
import re
from pathlib import Path

import numpy as np

from camu_lightning.bench.aggregate import (
    Summary,
    average_diff,
    diverged_runs,
    per_seed,
    read_rows,
    summarise,
    table_metrics,
)
from camu_lightning.bench.claims import claims_section
from camu_lightning.bench.grid import cells, read_grid
from camu_lightning.bench.plots import (
    efficiency_frontier,
    epoch_curve,
    epsilon_histogram,
    gap_heatmap,
    overview_frontiers,
    relearn_curves,
)
from camu_lightning.files import atomic_write
from camu_lightning.gaps import ATTACK_KEYS
from camu_lightning.terminal import console, print_error, set_up_terminal

NAMES = {  # the tables' names of the methods; a method not listed here is shown by its key
    "retrain": "Retrain", "camu": "CaMU", "camu_fast": "CaMU (fast preset)", "finetune": "Finetune", "ngrad": "NGrad",
    "boundary_shrink": "Boundary shrink", "boundary_expanding": "Boundary expanding", "teacher_student": "T-S",
    "scrub": "SCRUB", "sisa": "SISA", "unroll": "Unroll", "salun": "SalUn", "ssd": "SSD", "l1_sparse": "ℓ1-sparse",
    "camu_remove": "Remove", "camu_removeto": "Removeto",
}  # fmt: skip
ORDER = list(NAMES)
ABLATIONS = ("camu_remove", "camu_removeto")  # CaMU without one causal path (RQ2)
RELEARN_LABEL = "relearn"  # the label of configs/bench/relearn.yaml's rows
RELEARN_FALL_POINTS = 1.0  # a relearning curve's D_f accuracy below its start by more than this: a fall
GAP_COLUMNS = ("avg_gap", "tow", "tow_mia", "rte", "rte_with_prepare", *(f"gap_{key}" for key in ATTACK_KEYS))


PRESET_SEEDS = 3  # the fast preset's sweep: CaMU at each epoch count on 3 seeds (the study)
PRESET_MIN_RTE = 20.0  # the fast preset is at least this many times faster than Retrain


def display(method_key: str) -> str:
    """A row's method key as the tables name it; a study's label (e.g. `_relearn`) is dropped."""
    key = method_key.removesuffix(f"_{RELEARN_LABEL}")
    base = key.removesuffix("_tuned")
    return NAMES.get(base, base) + (" (tuned)" if key != base else "")


def plain(method_key: str) -> bool:
    """A method's own rows, any method's (NAMES only prettifies): not a sweep point, whose key ends in its value
    (camu_max_epochs3), nor a labelled study (camu_relearn), which have sections of their own."""
    return not method_key.endswith(f"_{RELEARN_LABEL}") and not method_key[-1].isdigit()


def ordered(methods) -> list[str]:
    def rank(key: str) -> tuple[int, str]:
        base = key.removesuffix(f"_{RELEARN_LABEL}").removesuffix("_tuned")
        return ORDER.index(base) if base in ORDER else len(ORDER), key

    return sorted(methods, key=rank)


DATASET_ORDER = ("mnist", "fashion_mnist", "cifar10", "cifar100")  # the paper's order; others after, by name


MAIN_SCENARIOS = ("random", "class0")  # the paper's main tables; other removals (random15, class1, ...): its appendix


def setting_order(setting: tuple[str, str]) -> tuple[int, str, bool, int, str]:
    """MNIST before Fashion-MNIST, random removal before class removal (the paper's tables), then by size:
    random before random15 before random20."""
    dataset, scenario = setting
    known = DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else len(DATASET_ORDER)
    return known, dataset, not scenario.startswith("random"), len(scenario), scenario


def better_variants(grouped) -> dict[tuple[str, str], dict[str, tuple[str, float]]]:
    """{setting: {method: (its row key, mean avg_gap)}}: per setting, each method's variant (default or tuned) of the
    smaller mean avg_gap to Retrain; Retrain, ablations, sweep points and studies are not methods here."""
    best = {}
    for setting in sorted(grouped, key=setting_order):
        choices: dict[str, tuple[str, float]] = {}
        for key, seeds in grouped[setting].items():
            gap = summarise([m.get("avg_gap") for m in seeds.values()])
            if not plain(key) or key == "retrain" or key in ABLATIONS or gap.n == 0:
                continue
            base = key.removesuffix("_tuned")
            if base not in choices or gap.mean < choices[base][1]:
                choices[base] = (key, gap.mean)
        best[setting] = choices
    return best


def overview_figure(grouped, docs: Path) -> list[str]:
    """The four settings side by side: each method's better variant, closeness against speed."""
    best = better_variants(grouped)
    panels = {}
    for (dataset, scenario), choices in best.items():
        methods = grouped[(dataset, scenario)]
        points = {display(key): (float(np.mean([m["time_unlearn_s"] + m.get("time_prepare_s", 0.0)
                                                for m in methods[key].values()])), gap)
                  for key, gap in choices.values()}  # fmt: skip
        retrain = float(np.mean([m["time_unlearn_s"] for m in methods.get("retrain", {}).values()] or [np.nan]))
        panels[f"{dataset} {scenario}"] = (points, retrain)
    if not panels:
        return []
    path = overview_frontiers(panels, docs / "figures" / "overview_time.png")
    return [f"![overview](figures/{path.name})", "",
            "*Which method is close to Retrain and fast, in every setting? avg_gap to Retrain against unlearning "
            "time plus training-time preparation (log axis), each method's better variant (tuned where its search "
            "won, named with (tuned)); Retrain is the star; a triangle on a panel's top edge is off its chart.*",
            ""]  # fmt: skip


README_BEGIN, README_END = "<!-- camu report: summary -->", "<!-- /camu report: summary -->"


def readme_with_summary(readme: Path, summary: list[str]) -> str:
    """The README with the summary table between its two markers, so it quotes the report, never a hand copy."""
    text = readme.read_text() if readme.is_file() else ""
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise ValueError(f"--readme {readme}: needs one line {README_BEGIN} and one line {README_END}")
    head, rest = text.split(README_BEGIN)
    block = "\n".join(line for line in summary if not line.startswith("## ")).strip()
    return f"{head}{README_BEGIN}\n{block}\n{README_END}{rest.split(README_END, 1)[1]}"


def diverged_seeds(seeds) -> str:
    """The seeds of a method variant whose runs diverged in one setting, as "seeds 2, 3 diverged"."""
    seeds = sorted(seeds)
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} diverged"


def summary_section(grouped, title: str = "## Summary: which method, how close to Retrain, how fast",
                    diverged=None) -> list[str]:  # fmt: skip
    """The report's first screen: per setting, every method's better variant (default or tuned, by mean avg_gap)
    ranked by its avg_gap to Retrain, with its RTE (charging SISA's and Unroll's training-time preparation) and
    ToW; methods ordered by their mean rank over the settings. A variant's diverged seeds are named in its cell:
    its numbers are over the others (`diverged`: {setting: {method_key: {seed: error}}})."""
    diverged = diverged or {}
    best = better_variants(grouped)
    settings = list(best)
    ranks = {setting: {base: rank for rank, (base, _) in enumerate(sorted(choices.items(), key=lambda c: c[1][1]), 1)}
             for setting, choices in best.items()}  # fmt: skip
    bases = {base for choices in best.values() for base in choices}
    order = sorted(bases, key=lambda b: (np.mean([r[b] for r in ranks.values() if b in r]), ORDER.index(b)
                                         if b in ORDER else len(ORDER)))  # fmt: skip

    def cell(setting: tuple[str, str], base: str) -> str:
        if base not in best[setting]:
            return "—"
        key = best[setting][base][0]
        seeds = grouped[setting][key].values()
        gap, tow = (summarise([m.get(c) for m in seeds]) for c in ("avg_gap", "tow"))
        rte = summarise([m.get("rte_with_prepare", m.get("rte")) for m in seeds])
        notes = ["tuned"] if key.endswith("_tuned") else []
        if seeds_diverged := diverged.get(setting, {}).get(key):
            notes.append(diverged_seeds(seeds_diverged))
        variant = f" ({'; '.join(notes)})" if notes else ""
        return f"{ranks[setting][base]}. {gap.text()}{variant}; {rte.mean:.1f}×; ToW {tow.mean:.2f}"

    header = ["method", *(f"{dataset} {scenario}" for dataset, scenario in settings)]
    body = [[NAMES.get(base, base), *(cell(setting, base) for setting in settings)] for base in order]
    return [
        title,
        "",
        "Per setting: rank by avg_gap to Retrain (mean ± std over seeds; lower is closer), the method's better "
        "variant (tuned where its search won), RTE (Retrain's time / the method's, training-time preparation "
        "included: SISA's shards, Unroll's recorded pass) and ToW (1 = indistinguishable from Retrain). Methods in "
        "order of their mean rank.",
        "",
        *(markdown_table(header, body) if body else ["No method has rows here yet, only Retrain (its runs go first)."]),
        "",
    ]


def study_label(study: dict) -> str:
    """A forget-quality study's method as the tables name it, from its config's name (configs/mnist_teacher_student.yaml
    -> teacher_student -> "T-S"): a config under configs/tuned/ adds "(tuned)", a preset beside the recipe
    (configs/mnist_camu_fast.yaml) "(fast preset)", so that variants of one method stay apart."""
    if "config" not in study:  # a study written by hand: its method's class name
        return study["method"]
    config = Path(study["config"])
    key = re.sub(r"^(fashion_mnist|mnist|cifar100|cifar10)_((random|class\d+)_)?", "", config.stem)
    key = re.sub(r"_(fast|class)$", "", key)
    if config.parent.name == "tuned":
        return display(f"{key}_tuned")
    return display(key) + (" (fast preset)" if config.stem.endswith("_fast") else "")


def forget_quality_line(results: Path) -> list[str]:
    """The summary's forget quality: each method's F from its largest `camu score` study (N models), where
    measured; those studies run on their own data set, named here."""
    largest: dict[str, dict] = {}
    for path in sorted(results.glob("forget_quality/**/*.json")):
        study = json.loads(path.read_text())
        if study["models"] >= largest.get(study_label(study), {"models": 0})["models"]:
            largest[study_label(study)] = study
    if not largest:
        return []
    scores = sorted(largest.values(), key=lambda study: -study["forget_quality"])
    where = sorted({f"{Path(study['dataset']).stem}, N = {study['models']}" for study in scores})
    text = ", ".join(f"{study_label(study)} {study['forget_quality']:.3g}" for study in scores)
    return [f"Forget quality F where measured ({'; '.join(where)}; higher: harder to tell from Retrain; Retrain "
            f"against its own second set of models is the ceiling at that N): {text}.", ""]  # fmt: skip


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in body)]


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


def ablation_table(methods, scenario: str) -> list[str]:
    """RQ2: Retrain, Finetune, Remove, Removeto and CaMU side by side, where the ablations ran."""
    if not set(ABLATIONS) & set(methods):
        return []
    keys = [k for k in ("retrain", "finetune", *ABLATIONS, "camu") if k in methods]
    columns = [*table_metrics(scenario), "avg_gap"]
    body = [[display(k), *(summarise([m.get(c) for m in methods[k].values()]).text() for c in columns)] for k in keys]
    return ["RQ2, the causal paths' ablation:", "", *markdown_table(["setting", *columns], body), ""]


def relearn_section(methods, dataset: str, scenario: str, docs: Path) -> list[str]:
    """RQ3: how fast each unlearned model regains D_f when fine-tuned on D_r (rows run with --relearn_epochs)."""
    curves = {}
    for key in ordered(methods):
        seeds = list(methods[key].values())
        epochs = sorted(int(q.rsplit("_", 1)[1]) for q in seeds[0] if q.startswith("relearn_delta_acc_forget_"))
        if epochs:
            curves[display(key)] = {name: [float(np.mean([m[f"relearn_delta_{name}_{e}"] for m in seeds]))
                                           for e in epochs] for name in ("acc_forget", "acc_remain")}  # fmt: skip
    if not curves:
        return []
    path = docs / "figures" / f"{dataset}_{scenario}_relearn.png"
    relearn_curves(curves, f"{dataset} {scenario}: relearning on D_r", path)
    lines = [f"![relearn](figures/{path.name})", "",
             "*RQ3: does the unlearned model regain D_f faster than Retrain when fine-tuned on D_r? |Δ accuracy| on "
             "D_f and D_r per epoch (mean over seeds); top: Retrain, CaMU and the methods within 5 points, on a scale "
             "where they differ; bottom: the rest on their own scale. A model that forgot regains D_f no faster than "
             "Retrain.*", ""]  # fmt: skip
    # The paper plots |Δ|: a fall reads like a regain. A model that still knew D_f loses it on D_r alone (on class
    # removal D_r holds no row of the class), which says it had not forgotten, not that it relearns.
    falls = [name for name, curve in curves.items() if curve["acc_forget"][-1] < -RELEARN_FALL_POINTS]
    if falls:
        lines += [f"D_f accuracy *fell* while relearning (by more than {RELEARN_FALL_POINTS:g} point after the last "
                  f"epoch), so |Δ| there is a loss, not a regain: {', '.join(falls)}. These models still knew D_f "
                  "after unlearning (their accuracy on the forgotten data above); fine-tuning on D_r alone "
                  "erased it.", ""]  # fmt: skip
    return lines


def one_sitting_rte(methods, key: str) -> Summary:
    """RTE over the seeds whose row and whose Retrain ran in one recorded sitting (machine boot): a time ratio
    across machines is not a speed-up."""
    sittings = {seed: m["sitting"] for seed, m in methods.get("retrain", {}).items()}
    return summarise([m.get("rte") for seed, m in methods[key].items()
                      if m["sitting"] is not None and m["sitting"] == sittings.get(seed)])  # fmt: skip


def fast_preset(methods, dataset: str, scenario: str, docs: Path, configs: Path | None) -> list[str]:
    """CaMU's epoch sweep (rows camu_max_epochs<k>) and the fast preset: the fewest epochs whose mean avg_gap is at
    or below the 10-epoch recipe's mean and whose RTE (one sitting) is at least PRESET_MIN_RTE; written as
    configs/<dataset>_camu_fast.yaml when `configs` is given and the sweep has PRESET_SEEDS seeds."""
    swept = {int(key.removeprefix("camu_max_epochs")): key for key in methods if key.startswith("camu_max_epochs")}
    reference_key = swept.get(10, "camu" if "camu" in methods else None)
    if not swept or reference_key is None:
        return []
    seeds = sorted({seed for key in swept.values() for seed in methods[key]})
    provisional = len(seeds) < PRESET_SEEDS
    gap = {e: summarise([m.get("avg_gap") for m in methods[k].values()]) for e, k in sorted(swept.items())}
    rte = {e: one_sitting_rte(methods, k) for e, k in sorted(swept.items())}
    reference = summarise([m.get("avg_gap") for m in methods[reference_key].values()])
    recipe_rte = one_sitting_rte(methods, reference_key)
    chosen = next((e for e in gap if gap[e].mean <= reference.mean and rte[e].mean >= PRESET_MIN_RTE), None)
    path = docs / "figures" / f"{dataset}_{scenario}_camu_epochs.png"
    epoch_curve(list(gap), [(s.mean, s.std) for s in gap.values()], [(s.mean, s.std) for s in rte.values()],
                reference.mean, PRESET_MIN_RTE, chosen, f"{dataset} {scenario}: CaMU's epochs", path)  # fmt: skip
    body = [[str(e), gap[e].text(), rte[e].text(1), str(rte[e].n)] for e in gap]
    lines = ["CaMU's epochs (fast preset):", ""]
    lines += markdown_table(["epochs", "avg_gap", "RTE (one sitting)", "seeds in one sitting"], body) + [""]
    if chosen is None:
        verdict = f"No epoch count is as close as the recipe at {PRESET_MIN_RTE:g}× or more: no preset."
    else:
        plural = "" if chosen == 1 else "s"
        verdict = (f"{'Provisionally' if provisional else 'The fast preset:'} {chosen} epoch{plural}, avg_gap "
                   f"{gap[chosen].text()} against the recipe's {reference.text()}, RTE {rte[chosen].mean:.1f}× against "
                   f"{recipe_rte.mean:.1f}×")  # fmt: skip
        verdict += (f" (seeds {seeds}; the preset needs {PRESET_SEEDS} seeds, so none is written yet)." if provisional
                    else f" (seeds {seeds}).")  # fmt: skip
    lines += [f"![epochs](figures/{path.name})", "",
              f"*Which is the fewest CaMU epochs that is as close to Retrain as the 10-epoch recipe and at least "
              f"{PRESET_MIN_RTE:g}× faster than Retrain? Left: avg_gap (dashed: the recipe's mean); right: RTE over "
              f"the seeds whose row and Retrain ran in one sitting (dashed: {PRESET_MIN_RTE:g}×). {verdict}*",
              ""]  # fmt: skip
    if configs is not None and not provisional and chosen is not None:
        text = (configs / f"{dataset}_camu.yaml").read_text()
        header = (f"# Fast CaMU preset ({chosen} epoch{plural}): the fewest epochs whose mean avg_gap to Retrain is at "
                  f"or below the 10-epoch recipe's\n# and whose RTE is at least {PRESET_MIN_RTE:g}x: avg_gap "
                  f"{gap[chosen].text()} vs {reference.text()} (seeds {sorted(methods[reference_key])}), RTE "
                  f"{rte[chosen].mean:.1f}x vs {recipe_rte.mean:.1f}x\n# (seeds whose row and Retrain ran in one "
                  f"sitting; `camu report --fast_presets`).\n")  # fmt: skip
        preset = header + re.sub(r"max_epochs: \d+", f"max_epochs: {chosen}", text, count=1)
        atomic_write(configs / f"{dataset}_camu_fast.yaml", lambda temporary: temporary.write_text(preset))
    return lines


def summary_csv(grouped) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dataset", "scenario", "method", "quantity", "n", "mean", "std", "ci95_half_width"])
    for (dataset, scenario), methods in sorted(grouped.items()):
        for key in ordered(methods):
            quantities = sorted({q for m in methods[key].values() for q, v in m.items() if isinstance(v, int | float)})
            for quantity in quantities:
                s: Summary = summarise([m.get(quantity) for m in methods[key].values()])
                if s.n:
                    writer.writerow([dataset, scenario, key, quantity, s.n, f"{s.mean:.6g}", f"{s.std:.6g}",
                                     "" if s.n == 1 else f"{s.ci95:.6g}"])  # fmt: skip
    return out.getvalue()


def forget_quality_section(results: Path, docs: Path) -> list[str]:
    """The `camu score` studies copied under results/forget_quality: their scores, and each one's ε histogram where
    its JSON holds the per-example ε (studies before that was recorded hold only the summary)."""
    studies = sorted(results.glob("forget_quality/**/*.json"))
    if not studies:
        return []
    body, figures = [], []
    for path in studies:
        study = json.loads(path.read_text())
        numbers = [f"{study[key]:.4f}" for key in ("forget_quality", "forget_quality_final", "epsilon_share_max")]
        dataset = Path(study["dataset"]).stem
        body.append([study_label(study), dataset, str(study["models"]), *numbers])
        if "epsilons" in study:
            figure = docs / "figures" / f"forget_quality_{dataset}_{path.stem}.png"
            method, quality, models = study_label(study), study["forget_quality"], study["models"]
            title = f"{method} vs Retrain on {dataset}: F = {quality:.3f}, N = {models}"
            epsilon_histogram(np.asarray(study["epsilons"]), models, title, figure)
            figures += [f"![ε of {method}](figures/{figure.name})", ""]
    lines = ["## Forget quality (NeurIPS 2023 challenge score, metrics.md section 9)", ""]
    lines += markdown_table(["method", "dataset", "N", "F", "F (utility-adjusted)", "share ε = 50"], body) + [""]
    if figures:
        lines += [*figures, "*Per-example ε in the score's buckets, each labelled with the points it earns; red: "
                  "ε at the cap, which earns none.*", ""]  # fmt: skip
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
    lines += sittings(rows)
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
