"""`camu bench` and `camu report`: the grid's cells and hashes, the aggregation against hand computations
(metrics.md section 8's CI case), the report from synthetic rows, and a real grid through submitit's local executor
that a rerun skips."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from camu_lightning.bench.aggregate import average_diff, per_seed, summarise
from camu_lightning.bench.grid import cells, read_grid
from camu_lightning.bench.report import build, scenario_section
from camu_lightning.bench.sections import forget_quality_line
from camu_lightning.bench.summary import summary_section
from camu_lightning.cli import main
from camu_lightning.utils.config_files import read_config

REPO = Path(__file__).resolve().parents[1]


def write_grid(path: Path, **settings) -> Path:
    path.write_text(yaml.safe_dump({"datasets": ["mnist"], "methods": ["camu", "retrain", "ngrad"], "seeds": [1, 2]}
                                   | settings))  # fmt: skip
    return path


def retrain_rows(results: Path, seeds: list[int], split_key: str = "split") -> None:
    """Finished Retrain rows of mnist random for these seeds (the partners a method cell waits for)."""
    for seed in seeds:
        metrics = {"status": "ok", "method": "Retrain", "split_key": split_key, "time_unlearn_s": 10.0,
                   "acc_remain": 99.5, "acc_forget": 97.0, "acc_test": 98.0, "mia": 55.0}  # fmt: skip
        row = {"dataset": "mnist", "scenario": "random", "method_key": "retrain", "seed": seed, "metrics": metrics}
        path = results / "mnist" / "random" / "retrain" / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(row))


def test_grid_cells_run_retrain_first_with_each_scenarios_forget_set(tmp_path: Path) -> None:
    configs = shutil.copytree(REPO / "configs", tmp_path / "configs")
    for searched in (configs / "tuned").glob("*_camu.yaml"):
        searched.unlink()  # CaMU unsearched in this copy: its tuned cells must be left out
    grid = read_grid(write_grid(tmp_path / "grid.yaml", variants=["default", "tuned"], forget_class=3))
    found = cells(grid, configs)
    assert [(c.scenario, Path(c.config).name, c.seed) for c in found[:3]] == [
        ("random", "mnist_retrain.yaml", 1), ("random", "mnist_retrain.yaml", 2), ("random", "mnist_camu.yaml", 1),
    ]  # fmt: skip
    class_camu = next(c for c in found if c.scenario == "class3" and c.method == "camu")
    assert Path(class_camu.config).name == "mnist_camu_class.yaml" and "[3]" in class_camu.overrides
    class_ngrad = next(c for c in found if c.scenario == "class3" and c.method == "ngrad")
    assert class_ngrad.overrides[2:] == ("--data.forget_fraction", "null", "--data.forget_classes", "[3]")
    assert str(class_ngrad.row) == "mnist/class3/ngrad/seed1.json"
    # A tuned cell exactly where configs/tuned/ has the config; class 3 takes the class-0 search's settings (the
    # searches run on class 0), with class 3 to forget; CaMU, never searched in this copy, has none: left out.
    tuned = [c for c in found if c.variant == "tuned" and c.seed == 1]
    assert [(c.scenario, c.method, Path(c.config).name) for c in tuned] == [
        ("random", "ngrad", "mnist_random_ngrad.yaml"), ("class3", "ngrad", "mnist_class0_ngrad.yaml"),
    ]  # fmt: skip
    assert tuned[1].overrides[2:] == ("--data.forget_classes", "[3]") and str(tuned[1].row) == (
        "mnist/class3/ngrad_tuned/seed1.json"
    )
    defaults = [c for c in found if c.variant == "default"]
    # The hash follows what decides the numbers, never where the data lives.
    moved = read_grid(write_grid(tmp_path / "moved.yaml", root="/elsewhere", forget_class=3))
    assert [c.config_hash for c in cells(moved, configs)] == [c.config_hash for c in defaults]
    more = read_grid(write_grid(tmp_path / "more.yaml", overrides=["--trainer.max_epochs", "1"], forget_class=3))
    assert cells(more, REPO / "configs")[0].config_hash != found[0].config_hash
    with pytest.raises(ValueError, match="unknown keys"):
        read_grid(write_grid(tmp_path / "bad.yaml", seeds_list=[1]))
    with pytest.raises(ValueError, match="grid scenarios"):
        read_grid(write_grid(tmp_path / "bad.yaml", scenarios=["half"]))


def test_summary_matches_the_spec_ci_case() -> None:
    summary = summarise([1, 2, 3, 4, 5])
    assert summary.mean == 3 and summary.std == pytest.approx(1.4142136)
    assert summary.ci95 == pytest.approx(2.7764451 * 0.7071068) and summary.ci95 == pytest.approx(1.9632432)
    assert summarise([7.0]).text() == "7.00" and summarise([]).text() == "—"
    # Unroll-sized speed-ups (mean 6e5, population std 1e5) switch to three significant digits.
    assert summarise([5e5, 7e5]).text() == "6.00e+05 ± 1.00e+05" and summarise([9999.0]).text(1) == "9999.0"


def row(method: str, seed: int, scenario: str = "random", boot: str | None = "b1", **metrics) -> dict:
    base = {"acc_remain": 99.0, "acc_forget": 98.0, "acc_test": 97.0, "mia": 50.0, "time_unlearn_s": 10.0}
    machine = {"device": "cpu", "cpus": 2, "torch": "x", "boot": boot}
    identity = {"dataset": "mnist", "scenario": scenario, "method_key": method, "seed": seed, "variant": "default"}
    return identity | {"machine": machine, "wall_s": 60.0, "metrics": base | metrics}


def synthetic_rows() -> list[dict]:
    return [
        row("retrain", 1, mia=50.0, time_unlearn_s=100.0),
        row("retrain", 2, mia=52.0, acc_forget=96.0, time_unlearn_s=100.0),
        row("camu", 1, mia=47.0, acc_forget=99.0, time_unlearn_s=5.0),
        row("camu", 2, boot="b2", mia=55.0, acc_forget=99.0, time_unlearn_s=20.0),
    ]


def test_gaps_are_per_seed_then_aggregated() -> None:
    grouped = per_seed(synthetic_rows())
    camu = grouped[("mnist", "random")]["camu"]
    # Seed 1: gaps forget +1, mia -3 -> avg_gap (1 + 3) / 4; seed 2: forget +3, mia +3 -> 6 / 4.
    assert [camu[s]["avg_gap"] for s in (1, 2)] == [1.0, 1.5]
    assert [camu[s]["rte"] for s in (1, 2)] == [20.0, 5.0]
    assert summarise([camu[s]["rte"] for s in (1, 2)]).mean == 12.5  # not 100 / mean(5, 20) = 8
    # Average Diff: |mean(47, 55) - mean(50, 52)| = 0 in the one cell.
    assert average_diff(grouped) == {"camu": 0.0}


def test_report_from_synthetic_rows(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for r in synthetic_rows():
        path = results / r["dataset"] / r["scenario"] / r["method_key"] / f"seed{r['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "differences.md").write_text("## Where we differ\n\nHonest text.")
    grid = write_grid(tmp_path / "grid.yaml", scenarios=["random"], methods=["retrain", "camu"])
    study_grid = write_grid(tmp_path / "relearn.yaml", scenarios=["random"], methods=["retrain", "camu"],
                            seeds=[1], label="relearn")  # fmt: skip
    relearn = {f"relearn_delta_{n}_{e}": float(e) for n in ("acc_forget", "acc_remain") for e in range(3)}
    studies = {"camu_remove": row("camu_remove", 1, mia=60.0), "camu_relearn": row("camu_relearn", 1, mia=47.0)}
    studies["camu_relearn"]["metrics"] |= relearn  # an RQ3 row (configs/bench/relearn.yaml's label)
    for key, r in studies.items():
        path = results / "mnist" / "random" / key / "seed1.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(r))
    study = {"method": "CaMU", "dataset": "mnist5k", "models": 4, "forget_quality": 0.25,
             "forget_quality_final": 0.2, "epsilon_share_max": 0.5, "epsilons": [0.0, 0.7, 50.0, 50.0]}  # fmt: skip
    (results / "forget_quality" / "mnist5k").mkdir(parents=True)
    (results / "forget_quality" / "mnist5k" / "camu_N4.json").write_text(json.dumps(study))
    with pytest.raises(ValueError, match="unreadable"):  # a bad grid: nothing written
        build(results, tmp_path / "docs", [tmp_path / "missing.yaml"], REPO / "configs")
    assert not (tmp_path / "docs" / "figures").exists()
    out = build(results, tmp_path / "docs", [grid, study_grid], REPO / "configs")
    text = out.read_text()
    assert "| CaMU | mnist5k | 4 | 0.2500 | 0.2000 | 0.5000 |" in text
    assert (tmp_path / "docs" / "figures" / "forget_quality_mnist5k_camu_N4.png").read_bytes()[:4] == b"\x89PNG"
    # A method per row (std ddof 0), its seed count first; the ablation and the relearn study are not rows here.
    header = "| method | seeds | acc_remain | acc_forget | acc_test | mia | time_unlearn_s | time_prepare_s |\n"
    assert header + "|---|---|---|---|---|---|---|---|\n| Retrain | 2 | 99.00 ± 0.00 | 97.00 ± 1.00 |" in text
    assert "| CaMU | 2 | 99.00 ± 0.00 | 99.00 ± 0.00 | 97.00 ± 0.00 | 51.00 ± 4.00 | 12.50 ± 7.50 | — |\n" in text
    assert max(line.count("|") - 1 for line in text.splitlines() if line.startswith("|")) <= 10  # fits a page
    # The summary opens the report: rank, avg_gap, RTE (Retrain 100 s / CaMU 5 and 20 s: 20x and 5x) and ToW.
    assert text.index("## Summary") < text.index("## mnist, random")
    first_screen = "\n".join(text.splitlines()[:40])  # the summary, forget quality and the claims' verdicts
    assert "Forget quality F where measured (mnist5k, N = 4;" in first_screen
    assert "- **CaMU is the most stable under relearning**" in first_screen
    assert "| method | mnist random |\n|---|---|\n| CaMU | 1. 1.25 ± 0.25; 12.5×; ToW 0.98 |\n" in text
    assert "| CaMU | 1.25 ± 0.25 |" in text  # avg_gap over seeds
    assert "Honest text." in text and "None: every cell has its row." in text
    # Each grid names its own missing cells: the relearn study has CaMU's row but not Retrain's.
    assert f"## Missing cells of {study_grid}\n\n- mnist/random/retrain_relearn: seed 1\n\n" in text
    # Seed 2's Retrain and CaMU ran in two boots; the ablation rows share seed 1's.
    assert "Sittings (machine boots): 2 recorded; 0 rows predate the record." in text
    assert "rows): mnist random seed 2." in text
    assert "| Remove | 99.00 | 98.00 | 97.00 | 60.00 | 2.50 |" in text  # RQ2: only mia differs, by 10 points: 10 / 4
    assert (tmp_path / "docs" / "figures" / "mnist_random_relearn.png").is_file()
    csv = (tmp_path / "docs" / "tables" / "summary.csv").read_text()
    assert "mnist,random,camu,avg_gap,2,1.25,0.25,3.17655" in csv  # 12.7062 * 0.25 (t_0.975,1 * sem)
    for figure in ("mnist_random_gaps.png", "mnist_random_time.png"):
        assert (tmp_path / "docs" / "figures" / figure).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # 30-40 s of processes (make test-all): the fast suite keeps under 5 minutes
def test_a_grid_runs_through_submitit_and_a_rerun_skips_its_rows(tmp_path: Path, tiny_npz: Path, capsys) -> None:
    overrides = ["--data.dataset", str(tiny_npz), "--original.epochs", "2", "--trainer.max_epochs", "1",
                 "--data.eval_batch_size", "16", "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    grid = write_grid(tmp_path / "grid.yaml", methods=["retrain", "finetune"], scenarios=["random"], seeds=[0],
                      overrides=overrides)  # fmt: skip
    args = ["bench", "--grid", str(grid), "--results", str(tmp_path / "results"), "--logs", str(tmp_path / "logs"),
            "--configs", str(REPO / "configs")]  # fmt: skip
    main([*args, "--launcher", "submitit", "--submitit_cluster", "local"])
    rows = sorted((tmp_path / "results").glob("**/seed0.json"))
    assert [p.parent.name for p in rows] == ["finetune", "retrain"]
    finetune = json.loads(rows[0].read_text())
    assert finetune["metrics"]["method"] == "Finetune" and finetune["metrics"]["status"] == "ok"
    assert finetune["metrics"]["avg_gap"] >= 0  # the Retrain ran first and paired with it
    boot = Path("/proc/sys/kernel/random/boot_id")
    assert finetune["machine"]["boot"] == (boot.read_text().strip() if boot.is_file() else None)
    capsys.readouterr()
    main(args)
    assert "2 cells, 2 rows current (skipped), 0 to run" in capsys.readouterr().err.replace("\n", " ")


def test_fast_preset_is_the_fewest_epochs_as_close_as_the_recipe_and_20x_faster_in_one_sitting(tmp_path: Path) -> None:
    # avg_gap = |gap mia| / 4 here. The 10-epoch recipe: 1.0, 2.0, 1.5 (mean 1.5). 1 epoch: 5.0, fast but far;
    # 2 epochs: 1.5, 2.0, 1.75 (1.75 > 1.5); 3 epochs: 1.0, 1.5, 1.75 (1.4167) in 4 s; 4 epochs: 1.0 in 10 s.
    mias = {
        "retrain": (50, 50, 50),
        "camu_max_epochs10": (54, 58, 56),
        "camu_max_epochs1": (70, 70, 70),
        "camu_max_epochs2": (56, 58, 57),
        "camu_max_epochs3": (54, 56, 57),
        "camu_max_epochs4": (54, 54, 54),
    }
    times = {"retrain": 100.0, "camu_max_epochs10": 25.0, "camu_max_epochs1": 1.0, "camu_max_epochs2": 2.0,
             "camu_max_epochs3": 4.0, "camu_max_epochs4": 10.0}  # fmt: skip
    results = tmp_path / "results"
    for method, values in mias.items():
        for seed, mia in zip((1, 2, 3), values, strict=True):
            # Seed 1's Retrain ran in another sitting, 4x slower: its RTE (100x for 3 epochs) is not counted.
            boot, time = ("b0", 400.0) if (method, seed) == ("retrain", 1) else ("b1", times[method])
            path = results / "mnist" / "random" / method / f"seed{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(row(method, seed, boot=boot, mia=float(mia), time_unlearn_s=time)))
    configs = shutil.copytree(REPO / "configs", tmp_path / "configs")
    (configs / "mnist_camu_fast.yaml").unlink()  # the committed preset: this test writes its own
    # Two seeds: the curve and a provisional choice, no preset.
    for method in mias:
        (results / "mnist" / "random" / method / "seed3.json").rename(tmp_path / f"{method}_seed3.json")
    text = build(results, tmp_path / "docs", [], configs, fast_presets=True).read_text()
    assert "Provisionally 3 epochs, avg_gap 1.25 ± 0.25" in text and "so none is written yet" in text
    assert not (configs / "mnist_camu_fast.yaml").exists()
    for method in mias:
        (tmp_path / f"{method}_seed3.json").rename(results / "mnist" / "random" / method / "seed3.json")
    text = build(results, tmp_path / "docs", [], configs, fast_presets=True).read_text()
    assert "| 3 | 1.42 ± 0.31 | 25.0 ± 0.0 | 2 |" in text and "| 1 | 5.00 ± 0.00 | 100.0 ± 0.0 | 2 |" in text
    chosen = "The fast preset: 3 epochs, avg_gap 1.42 ± 0.31 against the recipe's 1.50 ± 0.41, RTE 25.0× against 4.0×"
    assert chosen in text
    preset = read_config(configs / "mnist_camu_fast.yaml")
    recipe = read_config(configs / "mnist_camu.yaml")
    recipe.pop("tune")
    recipe["trainer"]["max_epochs"] = 3
    assert preset == recipe  # the recipe with 3 epochs, and nothing else changed
    written = yaml.safe_load((configs / "mnist_camu_fast.yaml").read_text())
    assert written["model"] == "model/cnn/camu.yaml" and isinstance(written["trainer"], dict)  # references kept
    assert (tmp_path / "docs" / "figures" / "mnist_random_camu_epochs.png").is_file()
    # At 30x the bar, 3 epochs (25x) no longer qualifies and nothing closer is faster: no preset.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("camu_lightning.bench.sections.PRESET_MIN_RTE", 30.0)
        text = build(results, tmp_path / "docs", [], configs).read_text()
    assert "No epoch count is as close as the recipe at 30× or more: no preset." in text
    swept = {"method": "camu", "setting": "trainer.max_epochs", "values": [1, 3]}
    sweep = read_grid(
        write_grid(tmp_path / "sweep.yaml", methods=["retrain", "camu"], scenarios=["random"], sweep=swept)
    )
    names = [str(c.row.parent.name) for c in cells(sweep, REPO / "configs")]
    assert names == ["retrain"] * 2 + ["camu_max_epochs1"] * 2 + ["camu_max_epochs3"] * 2


def test_a_labelled_study_has_rows_of_its_own_beside_the_plain_ones(tmp_path: Path) -> None:
    plain = cells(read_grid(write_grid(tmp_path / "plain.yaml", scenarios=["random"])), REPO / "configs")
    study = read_grid(write_grid(tmp_path / "relearn.yaml", scenarios=["random"], label="relearn",
                                 overrides=["--relearn_epochs", "5"]))  # fmt: skip
    labelled = cells(study, REPO / "configs")
    assert [str(c.row) for c in labelled[:3]] == [
        "mnist/random/retrain_relearn/seed1.json", "mnist/random/retrain_relearn/seed2.json",
        "mnist/random/camu_relearn/seed1.json",
    ]  # fmt: skip
    assert {c.row for c in plain}.isdisjoint(c.row for c in labelled)
    assert [c.config_hash for c in labelled] != [c.config_hash for c in plain]  # the overrides decide numbers
    repo_grid = cells(read_grid(REPO / "configs" / "bench" / "relearn.yaml"), REPO / "configs")
    assert all(c.row.parent.name.endswith("_relearn") and "--relearn_epochs" in c.overrides for c in repo_grid)
    for bad in ("Relearn", "re-learn", 3):
        with pytest.raises(ValueError, match="grid label must be"):
            read_grid(write_grid(tmp_path / "bad.yaml", label=bad))


def test_sigterm_stops_the_runs_in_flight_with_the_grid(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import threading
    import time

    from camu_lightning.bench.run import RUNNING, STOPPING, run_process, stop_runs_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    try:
        stop_runs_on_sigterm()
        codes = []
        waiting = threading.Thread(target=lambda: codes.append(
            run_process([sys.executable, "-c", "import time; time.sleep(60)"], subprocess.DEVNULL, True)))  # fmt: skip
        waiting.start()
        while not RUNNING:
            time.sleep(0.01)
        with pytest.raises(SystemExit) as stopped:
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        waiting.join(timeout=10)
        assert stopped.value.code == 128 + signal.SIGTERM and codes == [-signal.SIGTERM] and not RUNNING
        with pytest.raises(RuntimeError, match="not started: the grid was stopped"):  # a queued cell starts nothing
            run_process([sys.executable, "-c", "pass"], subprocess.DEVNULL, True)
    finally:
        signal.signal(signal.SIGTERM, before)
        STOPPING.clear()


def test_the_relearn_section_names_the_methods_whose_forget_accuracy_fell(tmp_path: Path) -> None:
    """|Δ| hides a fall: a model that had not forgotten loses D_f on D_r alone; the report says which did."""
    from camu_lightning.bench.sections import relearn_section

    def seed(forget: list[float]) -> dict[str, float]:
        return {f"relearn_delta_{name}_{e}": (forget[e] if name == "acc_forget" else 0.0)
                for name in ("acc_forget", "acc_remain") for e in range(3)}  # fmt: skip

    methods = {
        "retrain_relearn": {1: seed([0.0, 0.5, 0.8])},  # a small regain
        "scrub_relearn": {1: seed([0.0, -90.0, -99.0]), 2: seed([0.0, -80.0, -97.0])},  # mean -98: a fall
        "ngrad_relearn": {1: seed([0.0, -0.5, -0.9])},  # within the 1-point margin
    }
    (tmp_path / "figures").mkdir()
    text = "\n".join(relearn_section(methods, "mnist", "class0", tmp_path))
    assert "so |Δ| there is a loss, not a regain: SCRUB." in text
    assert (tmp_path / "figures" / "mnist_class0_relearn.png").is_file()


def test_the_summary_ranks_each_methods_better_variant_in_the_papers_setting_order() -> None:

    def seeds(gap: float, rte: float) -> dict[int, dict[str, float]]:
        return {1: {"avg_gap": gap - 0.5, "rte": rte, "tow": 0.9}, 2: {"avg_gap": gap + 0.5, "rte": rte, "tow": 0.9}}

    grouped = {
        ("fashion_mnist", "random"): {"camu": seeds(1.0, 5.0), "ngrad": seeds(4.0, 2.0)},
        ("mnist", "class0"): {"camu": seeds(3.0, 5.0), "ngrad": seeds(9.0, 2.0), "ngrad_tuned": seeds(2.0, 4.0)},
        ("mnist", "random"): {"retrain": {1: {}}, "camu": seeds(1.0, 5.0), "camu_remove": seeds(0.1, 1.0),
                              "camu_max_epochs1": seeds(0.1, 50.0), "sisa": {1: {"avg_gap": 2.5, "rte": 9.0,
                              "rte_with_prepare": 0.5, "tow": 0.8}, 2: {"avg_gap": 3.5, "rte": 9.0,
                              "rte_with_prepare": 0.5, "tow": 0.8}}},
    }  # fmt: skip
    lines = summary_section(grouped)
    table = lines[lines.index("| method | mnist random | mnist class0 | fashion_mnist random |") :]
    # Mean ranks: CaMU (1 + 2 + 1) / 3, NGrad (1 + 2) / 2, SISA 2; ablation, sweep point and Retrain are not ranked.
    # Each pair's per-seed differences are equal (e.g. CaMU - SISA: -2, -2): every place is sure, none shared.
    camu = ("1. 1.00 ± 0.50; 5.0×; ToW 0.90", "2. 3.00 ± 0.50; 5.0×; ToW 0.90", "1. 1.00 ± 0.50; 5.0×; ToW 0.90")
    assert table[2] == "| CaMU | " + " | ".join(camu) + " |"
    assert table[3] == "| NGrad | — | 1. 2.00 ± 0.50 (tuned); 4.0×; ToW 0.90 | 2. 4.00 ± 0.50; 2.0×; ToW 0.90 |"
    assert table[4] == "| SISA | 2. 3.00 ± 0.50; 0.5×; ToW 0.80 | — | — |"  # RTE with its preparation
    floor = "| Retrain vs Retrain (the floor) | — (needs a Retrain of another init on each seed's split) | — (needs "
    assert table[5] == floor + "two Retrain seeds) | — (needs a Retrain of another init on each seed's split) |"
    assert len(table) == 7 and table[6] == ""


def test_the_readme_gets_the_summary_table_between_its_markers_and_nothing_else(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for r in synthetic_rows():
        path = results / r["dataset"] / r["scenario"] / r["method_key"] / f"seed{r['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    readme = tmp_path / "README.md"
    marked = "<!-- camu report: summary -->\nstale\n<!-- /camu report: summary -->\n"
    readme.write_text(f"# Title\n\nIntro.\n\n{marked}End.\n")
    build(results, tmp_path / "docs", [], REPO / "configs", readme=readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\nIntro.\n\n<!-- camu report: summary -->\nPer setting: rank by avg_gap")
    floor = "| Retrain vs Retrain (the floor) | — (needs a Retrain of another init on each seed's split) |"
    assert f"| CaMU | 1. 1.25 ± 0.25; 12.5×; ToW 0.98 |\n{floor}\n<!-- /camu report: summary -->\nEnd.\n" in text
    assert "stale" not in text and "## Summary" not in text
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    (tmp_path / "docs" / "reproduction.md").unlink()
    with pytest.raises(ValueError, match="--readme .*bare.md: needs one line <!-- camu report: summary -->"):
        build(results, tmp_path / "docs", [], REPO / "configs", readme=bare)
    assert bare.read_text() == "no markers\n" and not (tmp_path / "docs" / "reproduction.md").exists()


def test_blocks_fractions_and_classes_make_the_appendix_cells(tmp_path: Path) -> None:
    path = tmp_path / "appendix.yaml"
    path.write_text(yaml.safe_dump({
        "seeds": [1], "root": "data", "forget_fractions": [0.15, 0.2], "forget_class": [1, 2],
        "blocks": [{"datasets": ["mnist"], "methods": ["camu", "retrain"]},
                   {"datasets": ["mnist"], "scenarios": ["class"], "methods": ["ngrad"], "variants": ["tuned"]}],
    }))  # fmt: skip
    found = cells(read_grid(path), REPO / "configs")
    rows = [str(c.row.parent) for c in found]
    assert rows == ["mnist/random15/retrain", "mnist/random15/camu", "mnist/random20/retrain", "mnist/random20/camu",
                    "mnist/class1/retrain", "mnist/class1/camu", "mnist/class2/retrain", "mnist/class2/camu",
                    "mnist/class1/ngrad_tuned", "mnist/class2/ngrad_tuned"]  # fmt: skip
    by_row = {str(c.row.parent): c for c in found}
    assert by_row["mnist/random20/camu"].overrides == ("--data.root", "data", "--data.forget_fraction", "0.2")
    # CaMU's class recipe and the class-0 search already remove a class: only which one is passed.
    assert Path(by_row["mnist/class2/camu"].config).name == "mnist_camu_class.yaml"
    assert by_row["mnist/class2/camu"].overrides[2:] == ("--data.forget_classes", "[2]")
    assert Path(by_row["mnist/class1/ngrad_tuned"].config).name == "mnist_class0_ngrad.yaml"
    assert by_row["mnist/class1/retrain"].overrides[2:] == (
        "--data.forget_fraction", "null", "--data.forget_classes", "[1]",
    )  # fmt: skip
    # The repository's appendix grid: 8 settings x 3 seeds, every block's config present.
    appendix = cells(read_grid(REPO / "configs" / "bench" / "appendix.yaml"), REPO / "configs")
    assert {c.scenario for c in appendix} == {"random15", "random20", "class1", "class2"} and len(appendix) == 102
    for bad, message in (({"forget_fractions": [15]}, "forget_fractions must be"),
                         ({"forget_class": ["one"]}, "forget_class must be"),
                         ({"blocks": [{"datasets": ["mnist"], "colour": 1}]}, "a block has unknown keys")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            read_grid(write_grid(tmp_path / "bad.yaml", **bad))


def test_the_appendix_settings_get_a_summary_and_sections_of_their_own(tmp_path: Path) -> None:
    results = tmp_path / "results"
    appendix = [
        row("retrain", 1, scenario="random15", time_unlearn_s=100.0),
        row("camu", 1, scenario="random15", mia=46.0, time_unlearn_s=10.0),
        row("camu_fast", 1, scenario="random15", mia=44.0, time_unlearn_s=2.0),  # the preset: a row of its own
        row("retrain", 1, scenario="class2", acc_test_remain=99.0, acc_test_forget=0.0, time_unlearn_s=80.0),
        row("camu", 1, scenario="class2", acc_test_remain=97.0, acc_test_forget=0.0, time_unlearn_s=8.0),
    ]
    for r in [*synthetic_rows(), *appendix]:
        path = results / r["dataset"] / r["scenario"] / r["method_key"] / f"seed{r['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    text = build(results, tmp_path / "docs", [], REPO / "configs").read_text()
    summary = text[text.index("## Summary") : text.index("## mnist, random")]
    assert "random15" not in summary and "| method | mnist random |" in summary  # the main table alone
    appendix_part = text[text.index("## Appendix") :]
    assert "| method | mnist random15 | mnist class2 |" in appendix_part
    # random15 is a random removal (a mia gap of 4 over its 4 table metrics: 1.00); class2 a class one (an
    # acc_test_remain gap of 2 over its 3: 0.67); Retrain's times over CaMU's: 10x both.
    # One seed each: CaMU and its fast preset cannot be told apart, so they share the place.
    assert "| CaMU | 1= 1.00; 10.0×; ToW 1.00 | 1. 0.67; 10.0×; ToW 1.00 |" in appendix_part
    assert "| CaMU (fast preset) | 1= 1.50; 50.0×; ToW " in appendix_part  # named as the tables name it
    assert appendix_part.index("## mnist, random15") < appendix_part.index("## mnist, class2")
    assert "| method | seeds | acc_test_remain | acc_test_forget | mia | time_unlearn_s |" in appendix_part


def test_forget_quality_studies_of_one_methods_variants_stay_apart(tmp_path: Path) -> None:
    """The recipe's, the tuned config's and the fast preset's studies are all CaMU: each keeps its own F, and a
    variant's larger study (N = 8) replaces its smaller one (N = 4) only; a method is named as in the tables (T-S)."""
    folder = tmp_path / "forget_quality" / "mnist5k"
    folder.mkdir(parents=True)
    studies = {
        "camu_N4": ("configs/mnist_camu.yaml", 4, 0.1),
        "camu_N8": ("configs/mnist_camu.yaml", 8, 0.2),
        "camu_tuned_N8": ("configs/tuned/mnist_random_camu.yaml", 8, 0.3),
        "camu_fast_N8": ("configs/mnist_camu_fast.yaml", 8, 0.05),
        "teacher_student_N8": ("configs/mnist_teacher_student.yaml", 8, 0.01),
    }
    for stem, (config, models, quality) in studies.items():
        method = "TeacherStudent" if stem.startswith("teacher") else "CaMU"  # a study names its method's class
        study = {"method": method, "dataset": "mnist5k", "models": models, "forget_quality": quality, "config": config}
        (folder / f"{stem}.json").write_text(json.dumps(study))
    line = forget_quality_line(tmp_path)[0]
    assert line.endswith("): CaMU (tuned) 0.3, CaMU 0.2, CaMU (fast preset) 0.05, T-S 0.01.")


def test_a_summary_with_only_retrains_rows_says_so_instead_of_an_empty_table() -> None:
    grouped = per_seed([row("retrain", 1, scenario="random15", time_unlearn_s=100.0)])
    lines = summary_section(grouped, "## Appendix")
    assert "No method has rows here yet, only Retrain (its runs go first)." in lines
    assert not any(line.startswith("| method") for line in lines)


def test_a_setting_with_only_its_retrain_gets_no_gaps_table_and_no_figures(tmp_path: Path) -> None:
    methods = per_seed([row("retrain", 1, scenario="class1", time_unlearn_s=100.0)])[("mnist", "class1")]
    lines = scenario_section("mnist", "class1", methods, tmp_path, None)
    assert "| Retrain | 1 |" in "\n".join(lines)  # its own accuracies and attacks still show
    assert not any(line.startswith(("Gaps to the Retrain", "| method | avg_gap", "![")) for line in lines)
    assert not (tmp_path / "figures").exists()


def diverged_row(method: str, seed: int, error: str) -> dict:
    return row(method, seed) | {"metrics": {"status": "diverged", "method": "NGrad", "epoch": 0, "error": error}}


def test_a_diverged_run_is_named_beside_its_method_and_left_out_of_the_means(tmp_path: Path) -> None:
    results = tmp_path / "results"
    error = "NGrad diverged at epoch 0, step 18: loss = nan; lower the learning rate"
    tuned = [row("ngrad_tuned", 1, mia=46.0, time_unlearn_s=10.0), diverged_row("ngrad_tuned", 2, error)]
    for r in [*synthetic_rows(), *tuned]:
        path = results / r["dataset"] / r["scenario"] / r["method_key"] / f"seed{r['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    text = build(results, tmp_path / "docs", [], REPO / "configs").read_text()
    # Seed 1 alone: its one gap is mia 46 - 50 over 4 metrics (1.00), Retrain's 100 s over its 10 s (10x); one seed
    # shared with CaMU cannot tell them apart: they share the first place (CaMU first in the tables' order).
    assert "| CaMU | 1= 1.25 ± 0.25; 12.5×; ToW 0.98 |\n| NGrad | 1= 1.00 (tuned; seed 2 diverged); 10.0×;" in text
    assert "| NGrad (tuned) | 1 | 99.00 | 98.00 | 97.00 | 46.00 | 10.00 | — |" in text
    assert ("Diverged runs (kept as rows, left out of every mean above and below): NGrad (tuned) seed 2 diverged "
            "(NGrad diverged at epoch 0, step 18: loss = nan).") in text  # fmt: skip


def test_the_grid_keeps_a_diverged_run_as_its_row_and_fails_a_crashed_one(tmp_path: Path, monkeypatch, capsys) -> None:
    """A run that diverged wrote results.json saying so (`RecordUnfinishedRun`) and exited 2: the grid keeps it as
    the cell's row and does not rerun it; a run that failed otherwise gets no row, even beside an older run's
    results.json in its folder."""

    from camu_lightning.bench import run as bench_run

    grid = write_grid(tmp_path / "grid.yaml", methods=["ngrad"], scenarios=["random"], seeds=[1])
    logs, results = tmp_path / "logs", tmp_path / "results"
    folder = cells(read_grid(grid), REPO / "configs")[0].run_folder(logs)
    error = "NGrad diverged at epoch 0, step 3: loss = nan; lower the learning rate"

    def diverging_run(command, log, quiet, threads=None, claim_fd=None) -> int:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps({"status": "diverged", "method": "NGrad", "error": error}))
        return 2

    args = ["bench", "--grid", str(grid), "--results", str(results), "--logs", str(logs), "--configs",
            str(REPO / "configs")]  # fmt: skip
    monkeypatch.setattr(bench_run, "run_process", diverging_run)
    retrain_rows(results, [1])
    main(args)
    said = capsys.readouterr().err.replace("\n", " ")
    assert "grid: 1 rows written (1 of them diverged runs)" in said
    assert f"diverged: mnist/random/ngrad/seed1.json: {error} (its row records it;" in said
    row_written = json.loads((results / "mnist/random/ngrad/seed1.json").read_text())
    assert row_written["metrics"]["status"] == "diverged" and row_written["metrics"]["error"] == error
    main([*args, "--dry_run"])
    assert "1 cells, 1 rows current (skipped), 0 to run" in capsys.readouterr().err.replace("\n", " ")

    (results / "mnist/random/ngrad/seed1.json").unlink()
    os.utime(folder / "results.json", (0, 0))  # the earlier run's file, older than the next run
    monkeypatch.setattr(bench_run, "run_process", lambda *run, **settings: 1)
    with pytest.raises(SystemExit) as failed:
        main(args)
    assert failed.value.code == 1 and "failed: mnist/random/ngrad/seed1.json failed (exit 1)" in capsys.readouterr().err
    assert not (results / "mnist/random/ngrad/seed1.json").exists()


@pytest.mark.parametrize(("jobs", "threads"), [(1, None), (2, "half")])
def test_runs_side_by_side_share_the_cores_and_one_run_alone_keeps_torchs_threads(
    tmp_path: Path, monkeypatch, jobs: int, threads
) -> None:
    from camu_lightning.bench import run as bench_run

    grid = write_grid(tmp_path / "grid.yaml", methods=["ngrad"], scenarios=["random"], seeds=[1, 2])
    given = []
    monkeypatch.setattr(bench_run, "run_process", lambda command, log, quiet, threads, fd: given.append(threads) or 1)
    retrain_rows(tmp_path / "results", [1, 2])
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    args = ["bench", "--grid", str(grid), "--results", str(tmp_path / "results"), "--logs", str(tmp_path / "logs"),
            "--configs", str(REPO / "configs"), "--jobs", str(jobs)]  # fmt: skip
    with pytest.raises(SystemExit):  # every run "failed": no row, but each was started with its threads
        main(args)
    assert given == [None, None] if threads is None else given == [3, 3]
