"""The report's sections beside the per-setting tables: RQ2's ablations, RQ3's relearning, the fast preset and
the forget-quality studies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from camu_lightning.bench.aggregate import Summary, summarise, table_metrics
from camu_lightning.bench.naming import ABLATIONS, RELEARN_FALL_POINTS, display, markdown_table, ordered
from camu_lightning.bench.plots import epoch_curve, epsilon_histogram, relearn_curves
from camu_lightning.utils.config_files import config_with
from camu_lightning.utils.files import atomic_write

PRESET_SEEDS = 3  # the fast preset's sweep: CaMU at each epoch count on 3 seeds (the study)
PRESET_MIN_RTE = 20.0  # the fast preset is at least this many times faster than Retrain


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
        recipe, out = configs / f"{dataset}_camu.yaml", configs / f"{dataset}_camu_fast.yaml"
        header = [f"Fast CaMU preset ({chosen} epoch{plural}): the fewest epochs whose mean avg_gap to Retrain is at "
                  f"or below the 10-epoch recipe's", f"and whose RTE is at least {PRESET_MIN_RTE:g}x: avg_gap "
                  f"{gap[chosen].text()} vs {reference.text()} (seeds {sorted(methods[reference_key])}), RTE "
                  f"{rte[chosen].mean:.1f}x vs {recipe_rte.mean:.1f}x", "(seeds whose row and Retrain ran in one "
                  f"sitting; `camu report --fast_presets`): {recipe} with trainer.max_epochs {chosen}."]  # fmt: skip
        preset = config_with(recipe, out, {"trainer.max_epochs": chosen}, header)
        atomic_write(out, lambda temporary: temporary.write_text(preset))
    return lines


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
