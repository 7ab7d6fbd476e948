"""The paper's claims about CaMU, each with a verdict from the committed rows: the report's second screen.

A claim is tested per setting (dataset × scenario) against the methods the paper compared it with, at the
settings the paper ran (defaults). The last line asks the question a reader has once every method was searched
(the suite's addition): at their best, is CaMU the closest? It is judged only where CaMU's own search has rows.
A claim that holds in every setting with rows is "reproduced", in none "not reproduced", in some "mixed";
settings without the rows a claim needs are named as pending.
"""

from __future__ import annotations

import numpy as np

# The paper's baselines (section 4.1), at their default settings; Retrain is the reference, not a contestant.
PAPER_BASELINES = ("ngrad", "boundary_shrink", "boundary_expanding", "teacher_student", "scrub", "sisa", "unroll")
ABLATION_SETTINGS = ("finetune", "camu_remove", "camu_removeto", "camu")  # RQ2: CaMU without each causal path
RELEARN_SUFFIX = "_relearn"


def mean_of(seeds: dict[int, dict], quantity) -> float | None:
    """The mean over seeds of one number per row (`quantity`: a key, or a function of the row's metrics)."""
    values = [quantity(m) if callable(quantity) else m.get(quantity) for m in seeds.values()]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def verdict(held: list[bool]) -> str:
    return "reproduced" if all(held) else "not reproduced" if not any(held) else "mixed"


def ranked(values: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda item: item[1])


def camu_place(values: dict[str, float], name, digits: int = 2, unit: str = "") -> str:
    """'2nd of 8 (0.82; before it: NGrad 0.34)': CaMU's place among `values` (lower first) and the (at most two)
    first before it."""
    order = ranked(values)
    place = [key for key, _ in order].index("camu") + 1
    ahead = ", ".join(f"{name(key)} {value:.{digits}f}{unit}" for key, value in order[: min(place - 1, 2)])
    more = ", …" if place > 3 else ""
    return f"{ordinal(place)} of {len(order)} ({values['camu']:.{digits}f}{unit}" + (
        f"; before it: {ahead}{more})" if ahead else ")"
    )


def claim_line(title: str, source: str, results: list[tuple[str, bool, str]], pending: list[str]) -> str:
    """One bullet: the claim, its verdict over the settings with rows, the numbers per setting."""
    if not results:
        return f"- **{title}** ({source}): pending — no setting has the rows it needs yet."
    numbers = "; ".join(f"{setting}: {text}" for setting, _, text in results)
    rest = f"; pending: {', '.join(pending)}" if pending else ""
    return f"- **{title}** ({source}): **{verdict([held for _, held, _ in results])}** — {numbers}{rest}."


def closest(grouped, settings, name) -> str:
    results, pending = [], []
    for setting in settings:
        methods = grouped[setting]
        gaps = {k: mean_of(methods[k], "avg_gap") for k in ("camu", *PAPER_BASELINES) if k in methods}
        gaps = {k: v for k, v in gaps.items() if v is not None}
        if "camu" not in gaps or len(gaps) < 2:
            pending.append(" ".join(setting))
            continue
        results.append((" ".join(setting), ranked(gaps)[0][0] == "camu", camu_place(gaps, name)))
    return claim_line("CaMU is the closest to Retrain", "avg_gap, paper Tables 2–3, its baselines at their "
                      "defaults", results, pending)  # fmt: skip


def fastest_after_unroll(grouped, settings, name) -> str:
    results, pending = [], []
    for setting in settings:
        methods = grouped[setting]
        times = {k: mean_of(methods[k], "time_unlearn_s") for k in ("camu", *PAPER_BASELINES) if k in methods}
        if "camu" not in times or "unroll" not in times:
            pending.append(" ".join(setting))
            continue
        order = [key for key, _ in ranked(times)]
        held = order[:2] == ["unroll", "camu"]
        results.append((" ".join(setting), held, camu_place(times, name, digits=1, unit=" s")))
    return claim_line("CaMU is the fastest after Unroll", "unlearning seconds, paper Table 5, MNIST datasets",
                      results, pending)  # fmt: skip


def largest_relearn_change(metrics: dict) -> float | None:
    """RQ3's instability of one run: the largest |Δ accuracy| on D_f or D_r over the relearning epochs."""
    deltas = [abs(v) for k, v in metrics.items() if k.startswith("relearn_delta_acc_")]
    return max(deltas) if deltas else None


def most_stable(grouped, settings, name) -> str:
    results, pending = [], []
    for setting in settings:
        methods = grouped[setting]
        studied = [k for k in methods if k.endswith(RELEARN_SUFFIX) and k != f"retrain{RELEARN_SUFFIX}"]
        change = {k.removesuffix(RELEARN_SUFFIX): mean_of(methods[k], largest_relearn_change) for k in studied}
        change = {k: v for k, v in change.items() if v is not None}
        if "camu" not in change or len(change) < 2:
            pending.append(" ".join(setting))
            continue
        results.append((" ".join(setting), ranked(change)[0][0] == "camu", camu_place(change, name)))
    return claim_line("CaMU is the most stable under relearning", "RQ3, paper Figures 4–5: the largest |Δ acc| "
                      "on D_f or D_r over 5 epochs of fine-tuning on D_r", results, pending)  # fmt: skip


def ablation_order(grouped, settings, name) -> str:
    results, pending = [], []
    for setting in settings:
        methods = grouped[setting]
        gaps = {k: mean_of(methods[k], "avg_gap") for k in ABLATION_SETTINGS if k in methods}
        if set(gaps) != set(ABLATION_SETTINGS) or None in gaps.values():
            pending.append(" ".join(setting))
            continue
        order = ranked(gaps)
        results.append((" ".join(setting), order[0][0] == "camu", " < ".join(f"{name(k)} {v:.2f}" for k, v in order)))
    return claim_line("CaMU, with all its causal paths, beats each ablation", "RQ2, paper Tables 6–7: avg_gap of "
                      "Finetune, Remove, Removeto, CaMU", results, pending)  # fmt: skip


def closest_at_best(grouped, best, settings, name) -> str:
    """The first claim again, every method at its better variant (`best`: the summary's {setting: {method: (row
    key, mean avg_gap)}}); a setting whose CaMU was not searched yet is pending, not judged on its default."""
    results, pending = [], []
    for setting in settings:
        choices = best.get(setting, {})
        if "camu_tuned" not in grouped[setting] or "camu" not in choices or len(choices) < 2:
            pending.append(" ".join(setting))
            continue
        order = ranked({key: gap for key, gap in choices.values()})
        place = [key for key, _ in order].index(choices["camu"][0]) + 1
        ahead = ", ".join(f"{name(key)} {gap:.2f}" for key, gap in order[: min(place - 1, 2)])
        text = f"{ordinal(place)} of {len(order)} ({name(choices['camu'][0])} {choices['camu'][1]:.2f}" + (
            f"; before it: {ahead}{', …' if place > 3 else ''})" if ahead else ")"
        )
        results.append((" ".join(setting), place == 1, text))
    return claim_line("At their best, CaMU is the closest to Retrain", "avg_gap, every method at its better variant, "
                      "CaMU searched with the baselines' budget", results, pending)  # fmt: skip


def claims_section(grouped, settings, name, best) -> list[str]:
    """The four claims the issue names, in the paper's order, then the first again with every method at its best
    (`best`: the summary's better variants); `name` turns a method key into the tables' name."""
    return [
        "**The paper's claims** (the first four at the paper's settings, its baselines at their defaults; the last "
        "with every method searched):",
        "",
        closest(grouped, settings, name),
        fastest_after_unroll(grouped, settings, name),
        ablation_order(grouped, settings, name),
        most_stable(grouped, settings, name),
        closest_at_best(grouped, best, settings, name),
        "",
    ]
