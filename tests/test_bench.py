import json
from pathlib import Path

from camu_lightning.bench.tables import latest_results, tables


def write_run(folder: Path, method: str, seed: int, **metrics) -> None:
    folder.mkdir(parents=True)
    results = {
        "dataset": "mnist",
        "forget_classes": [],
        "num_forget": 6000,
        "method": method,
        "seed": seed,
        "time_unlearn_s": 1.0,
    } | metrics
    (folder / "results.json").write_text(json.dumps(results))


def test_tables_show_mean_and_population_std_over_seeds(tmp_path: Path) -> None:
    for seed, value in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        write_run(
            tmp_path / f"version_{seed}",
            "CaMU",
            seed,
            acc_remain=value,
            acc_forget=50.0,
            acc_test=90.0,
            mia=50.0,
            gap_acc_remain=value - 3,
            avg_gap=abs(value - 3),
        )
    text = tables(latest_results(tmp_path))
    row = next(line for line in text.splitlines() if line.startswith("| CaMU"))
    assert "| 3.00 ± 1.41 |" in row  # np.std([1..5]) with ddof 0 = 1.4142
    assert "seeds: [0, 1, 2, 3, 4]" in text


def test_the_newest_run_of_a_method_and_seed_wins(tmp_path: Path) -> None:
    write_run(tmp_path / "version_0", "NGrad", 0, acc_remain=10.0, acc_forget=1, acc_test=1, mia=1)
    write_run(tmp_path / "version_1", "NGrad", 0, acc_remain=20.0, acc_forget=1, acc_test=1, mia=1)
    import os

    os.utime(tmp_path / "version_0" / "results.json", (1, 1))
    (run,) = latest_results(tmp_path)
    assert run["acc_remain"] == 20.0


def test_tables_take_the_gap_to_the_retrain_of_the_same_split_key(tmp_path: Path) -> None:
    metrics = dict(acc_forget=0.0, acc_test=0.0, mia=0.0, status="ok")
    write_run(tmp_path / "r1", "Retrain", 0, acc_remain=90.0, split_key="A", time_unlearn_s=10.0, **metrics)
    write_run(tmp_path / "r2", "Retrain", 1, acc_remain=70.0, split_key="B", time_unlearn_s=10.0, **metrics)
    write_run(tmp_path / "c1", "CaMU", 0, acc_remain=95.0, split_key="A", time_unlearn_s=2.0, **metrics)
    camu = next(run for run in latest_results(tmp_path) if run["method"] == "CaMU")
    assert camu["gap_acc_remain"] == 5.0 and camu["avg_gap"] == 5.0 / 4 and camu["rte"] == 5.0


def test_an_unfinished_run_is_not_a_tables_row(tmp_path: Path) -> None:
    """A Ctrl-C'd or diverged run's results.json says so and holds no metrics: the newest finished run stands."""
    write_run(tmp_path / "version_0", "NGrad", 0, acc_remain=20.0, acc_forget=1, acc_test=1, mia=1)
    for version, status in ((1, "interrupted"), (2, "diverged")):
        (tmp_path / f"version_{version}").mkdir()
        (tmp_path / f"version_{version}" / "results.json").write_text(json.dumps({"status": status, "method": "NGrad"}))
    (run,) = latest_results(tmp_path)
    assert run["acc_remain"] == 20.0
