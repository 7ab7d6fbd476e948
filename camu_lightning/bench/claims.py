"""The paper's claims about CaMU, each with a verdict from the committed rows: the report's second screen.

A claim is tested per setting (dataset × scenario) against the methods the paper compared it with, at the
settings the paper ran (defaults). The last line asks the question a reader has once every method was searched
(the suite's addition): at their best, is CaMU the closest? It is judged only where CaMU's own search has rows.
Comparisons of avg_gap are paired over seeds (paired.py): CaMU is closer than another method only where the
95 % interval of their per-seed differences excludes 0; otherwise they are tied, and a tie is neither a win nor a
loss. A claim that holds in every setting with rows is "reproduced", fails in every one "not reproduced", is tied
where it does not fail "tied", and otherwise "mixed"; each setting says how many seeds it rests on. Settings
without the rows a claim needs are named as pending.
"""

from __future__ import annotations

import itertools

import numpy as np

from camu_lightning.bench.paired import paired, shared_places

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


def verdict(held: list[bool | None]) -> str:
    """Over the settings: True held, False failed, None tied (neither surely held nor surely failed)."""
    if all(h is True for h in held):
        return "reproduced"
    if all(h is False for h in held):
        return "not reproduced"
    return "tied" if False not in held else "mixed"


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


def claim_line(title: str, source: str, results: list[tuple[str, bool | None, str]], pending: list[str]) -> str:
    """One bullet: the claim, its verdict over the settings with rows, the numbers per setting."""
    if not results:
        return f"- **{title}** ({source}): pending — no setting has the rows it needs yet."
    numbers = "; ".join(f"{setting}: {text}" for setting, _, text in results)
    rest = f"; pending: {', '.join(pending)}" if pending else ""
    return f"- **{title}** ({source}): **{verdict([held for _, held, _ in results])}** — {numbers}{rest}."


def seeds_count(contestants: dict[str, dict[int, dict]]) -> int:
    return len(set.intersection(*(set(seeds) for seeds in contestants.values())))


def closest_among(contestants: dict[str, dict[int, dict]], camu: str, name) -> tuple[bool | None, str]:
    """(held, text) of "CaMU is the closest" among the contestants' rows (`camu`: CaMU's key among them): its shared
    place by paired avg_gap, the methods surely closer, those tied with it, and the seeds it rests on."""
    places = shared_places(contestants)
    means = {key: mean_of(seeds, "avg_gap") for key, seeds in contestants.items()}
    place = places[camu]
    ahead = sorted((k for k in contestants if paired(contestants[camu], contestants[k]).verdict == "farther"),
                   key=lambda k: means[k])  # fmt: skip
    tied = sorted((k for k in contestants if k != camu and paired(contestants[camu], contestants[k]).verdict == "tied"),
                  key=lambda k: means[k])  # fmt: skip
    text = f"{ordinal(place)} of {len(contestants)} ({name(camu)} {means[camu]:.2f}"
    if ahead:
        text += "; surely closer: " + ", ".join(f"{name(k)} {means[k]:.2f}" for k in ahead[:2])
        text += ", …" if len(ahead) > 2 else ""
    if tied:
        text += (
            "; tied with: "
            + ", ".join(f"{name(k)} {means[k]:.2f}" for k in tied[:3])
            + (", …" if len(tied) > 3 else "")
        )
    rival = (ahead or tied or [None])[0]
    if rival is not None:
        text += f"; vs {name(rival)}: {paired(contestants[camu], contestants[rival]).text()}"
    text += f"; {seeds_count(contestants)} seeds)"
    held = False if ahead else (None if tied else True)
    return held, text


def closest(grouped, settings, name) -> str:
    results, pending = [], []
    for setting in settings:
        methods = grouped[setting]
        contestants = {k: methods[k] for k in ("camu", *PAPER_BASELINES) if k in methods}
        contestants = {k: v for k, v in contestants.items() if mean_of(v, "avg_gap") is not None}
        if "camu" not in contestants or len(contestants) < 2:
            pending.append(" ".join(setting))
            continue
        results.append(
            (" ".join(setting), *closest_among(contestants, "camu", lambda k: "CaMU" if k == "camu" else name(k)))
        )
    return claim_line("CaMU is the closest to Retrain", "avg_gap, paper Tables 2–3, its baselines at their "
                      "defaults", results, pending)  # fmt: skip


def clock_of(contestants: dict[str, dict[int, dict]]) -> tuple[str, str]:
    """(quantity, unit) the speed claim reads: process CPU seconds where every row has them from a CPU run (steadier
    than wall time on a machine shared with other work), else wall seconds."""
    on_cpu = all(m.get("unlearn_device") == "cpu" and m.get("time_unlearn_cpu_s")
                 for seeds in contestants.values() for m in seeds.values())  # fmt: skip
    return ("time_unlearn_cpu_s", " CPU s") if on_cpu else ("time_unlearn_s", " s")


def fastest_after_unroll(grouped, settings, name) -> str:
    results, pending = [], []
    for setting in settings:
        methods = grouped[setting]
        contestants = {k: methods[k] for k in ("camu", *PAPER_BASELINES) if k in methods}
        quantity, unit = clock_of(contestants)
        times = {k: mean_of(seeds, quantity) for k, seeds in contestants.items()}
        if "camu" not in times or "unroll" not in times:
            pending.append(" ".join(setting))
            continue
        order = [key for key, _ in ranked(times)]
        held = order[:2] == ["unroll", "camu"]
        results.append((" ".join(setting), held, camu_place(times, name, digits=1, unit=unit)))
    return claim_line("CaMU is the fastest after Unroll", "unlearning seconds (CPU seconds where every row has them), "
                      "paper Table 5, MNIST datasets", results, pending)  # fmt: skip


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
        rows = {k: methods[k] for k in ABLATION_SETTINGS if k in methods}
        gaps = {k: mean_of(v, "avg_gap") for k, v in rows.items()}
        if set(gaps) != set(ABLATION_SETTINGS) or None in gaps.values():
            pending.append(" ".join(setting))
            continue
        order = ranked(gaps)
        chain = name(order[0][0]) + f" {order[0][1]:.2f}"
        for (before, _), (key, gap) in itertools.pairwise(order):  # "=" where the two are tied
            chain += f" {'<' if paired(rows[before], rows[key]).verdict == 'closer' else '='} {name(key)} {gap:.2f}"
        verdicts = {k: paired(rows["camu"], rows[k]).verdict for k in rows if k != "camu"}
        held = False if "farther" in verdicts.values() else (None if "tied" in verdicts.values() else True)
        # "=" joins neighbours only: whom CaMU is surely behind is said outright.
        ahead = [name(k) for k, verdict in verdicts.items() if verdict == "farther"]
        behind = f"; surely closer than CaMU: {', '.join(ahead)}" if ahead else ""
        results.append((" ".join(setting), held, f"{chain} ({seeds_count(rows)} seeds{behind})"))
    return claim_line("CaMU, with all its causal paths, beats each ablation", "RQ2, paper Tables 6–7: avg_gap of "
                      "Finetune, Remove, Removeto, CaMU; = : tied", results, pending)  # fmt: skip


def closest_at_best(grouped, best, settings, name) -> str:
    """The first claim again, every method at its better variant (`best`: the summary's {setting: {method: (row
    key, mean avg_gap)}}); a setting whose CaMU was not searched yet is pending, not judged on its default."""
    results, pending = [], []
    for setting in settings:
        choices = best.get(setting, {})
        if "camu_tuned" not in grouped[setting] or "camu" not in choices or len(choices) < 2:
            pending.append(" ".join(setting))
            continue
        contestants = {key: grouped[setting][key] for key, _ in choices.values()}
        results.append((" ".join(setting), *closest_among(contestants, choices["camu"][0], name)))
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
