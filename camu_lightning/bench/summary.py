"""The report's first screen: the summary table of each method's better variant per setting, its figure and
CSV, and the README's copy of it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from camu_lightning.bench.aggregate import Summary, summarise
from camu_lightning.bench.naming import (
    ABLATIONS,
    FLOOR_KEY,
    NAMES,
    ORDER,
    display,
    markdown_table,
    ordered,
    plain,
    setting_order,
)
from camu_lightning.bench.paired import retrain_floor, shared_places
from camu_lightning.bench.plots import overview_frontiers


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
    ranks = {setting: shared_places({base: grouped[setting][key] for base, (key, _) in choices.items()})
             for setting, choices in best.items()}  # fmt: skip
    floors = {setting: floor_summary(grouped[setting], setting[1]) for setting in settings}
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
        if floors[setting] is not None and gap.mean <= floors[setting][0].mean:
            notes.append("within the floor")
        variant = f" ({'; '.join(notes)})" if notes else ""
        place = ranks[setting][base]
        shared = list(ranks[setting].values()).count(place) > 1
        return f"{place}{'=' if shared else '.'} {gap.text()}{variant}; {rte.mean:.1f}×; ToW {tow.mean:.2f}"

    def floor_cell(setting: tuple[str, str]) -> str:
        if floors[setting] is not None:
            floor, basis = floors[setting]
            return f"{floor.text()} ({basis})"
        if setting[1].startswith("random"):  # each seed forgets other samples: its Retrains share no split
            return "— (needs a Retrain of another init on each seed's split)"
        return "— (needs two Retrain seeds)"

    header = ["method", *(f"{dataset} {scenario}" for dataset, scenario in settings)]
    body = [[NAMES.get(base, base), *(cell(setting, base) for setting in settings)] for base in order]
    body += [["Retrain vs Retrain (the floor)", *(floor_cell(setting) for setting in settings)]] if body else []
    return [
        title,
        "",
        "Per setting: rank by avg_gap to Retrain (mean ± std over seeds; lower is closer), the method's better "
        "variant (tuned where its search won), RTE (Retrain's time / the method's, training-time preparation "
        "included: SISA's shards, Unroll's recorded pass) and ToW (1 = indistinguishable from Retrain). Methods in "
        "order of their mean rank. A rank counts only the methods surely closer (the 95 % interval of the per-seed "
        "differences excludes 0), so tied methods share it (`2=`).",
        "",
        "The floor is the avg_gap between two Retrains of the same split that differ only in initialisation and "
        "batch order (under class removal, the seeds' Retrains): a method at or below it (`within the floor`) is "
        "as close to Retrain as another Retrain is, and the order among such methods says nothing. Read an avg_gap "
        "against the floor, and a difference between two methods against their paired interval, never alone.",
        "",
        *(markdown_table(header, body) if body else ["No method has rows here yet, only Retrain (its runs go first)."]),
        "",
    ]


def floor_summary(methods: dict[str, dict[int, dict]], scenario: str) -> tuple[Summary, str] | None:
    """The setting's floor and what it rests on: the avg_gap of each seed's Retrain of another init to that seed's
    Retrain (configs/bench/floor.yaml), else under class removal that between the seeds' Retrains
    (paired.retrain_floor); None where neither has rows."""
    another = [metrics.get("avg_gap") for metrics in methods.get(FLOOR_KEY, {}).values()]
    if any(gap is not None for gap in another):
        found = summarise(another)
        return found, f"{found.n} seeds, a Retrain of another init"
    pairs = retrain_floor(methods.get("retrain", {}), not scenario.startswith("random"))
    return (summarise(pairs), f"{len(pairs)} pairs of Retrain seeds") if pairs else None


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
