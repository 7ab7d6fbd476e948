"""A grid's cells: a method cell runs only once its Retrain has a row (waiting while another bench runs it), every
row it writes has its gaps, and a bench killed by any signal leaves no run of its grid going."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from camu_lightning.bench import cell_claim
from camu_lightning.bench import run as bench_run
from camu_lightning.cli import main
from camu_lightning.gaps import gaps_to_retrain
from tests.test_bench_grid import REPO, retrain_rows, write_grid
from tests.test_reliability import tiny_grid

RETRAIN_ROW = Path("mnist/random/retrain/seed1.json")
NGRAD_ROW = Path("mnist/random/ngrad/seed1.json")


def ngrad_grid(tmp_path: Path) -> list[str]:
    grid = write_grid(tmp_path / "grid.yaml", methods=["ngrad"], scenarios=["random"], seeds=[1])
    return ["bench", "--grid", str(grid), "--results", str(tmp_path / "results"), "--logs", str(tmp_path / "logs"),
            "--configs", str(REPO / "configs")]  # fmt: skip


def finished_run(tmp_path: Path, started: list[str]):
    """A stand-in for `camu fit`: writes an NGrad results.json without gaps (its Retrain ran elsewhere)."""
    metrics = {"status": "ok", "method": "NGrad", "split_key": "split", "forget_classes": [], "time_unlearn_s": 2.0,
               "acc_remain": 99.0, "acc_forget": 98.0, "acc_test": 97.0, "mia": 60.0}  # fmt: skip

    def run(command, log, quiet, threads, claim_fd) -> int:
        started.append(" ".join(command))
        folder = tmp_path / "logs" / "mnist" / "random" / "ngrad_seed1"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(metrics))
        return 0

    return run, metrics


def test_a_method_cell_without_its_retrains_row_is_postponed_and_says_so(tmp_path: Path, monkeypatch, capsys):
    started: list[str] = []
    monkeypatch.setattr(bench_run, "run_process", finished_run(tmp_path, started)[0])
    main(ngrad_grid(tmp_path))  # was: the run started at once and its row was written without gaps
    said = " ".join(capsys.readouterr().err.split())
    assert started == [] and not (tmp_path / "results" / NGRAD_ROW).exists()
    assert "grid: 0 rows written; 1 postponed" in said
    assert f"postponed: {NGRAD_ROW}: its Retrain {RETRAIN_ROW} has no row (failed, or in no grid run now)" in said


def test_a_method_cell_waits_while_another_bench_runs_its_retrain_then_takes_its_gaps(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    started: list[str] = []
    run, metrics = finished_run(tmp_path, started)
    monkeypatch.setattr(bench_run, "run_process", run)
    monkeypatch.setattr(cell_claim, "WAIT_POLL_S", 0.05)
    results = tmp_path / "results"
    other_bench = cell_claim.claim(results, RETRAIN_ROW)  # another process's claim (a file of its own)

    def retrain_finishes() -> None:
        time.sleep(0.5)
        retrain_rows(results, [1])
        other_bench.close()

    finishing = threading.Thread(target=retrain_finishes)
    finishing.start()
    main(ngrad_grid(tmp_path))
    finishing.join()
    said = " ".join(capsys.readouterr().err.split())
    assert f"{NGRAD_ROW}: waiting for {RETRAIN_ROW}, run by another camu bench" in said
    assert len(started) == 1 and "grid: 1 rows written" in said
    row = json.loads((results / NGRAD_ROW).read_text())["metrics"]
    retrain = json.loads((results / RETRAIN_ROW).read_text())["metrics"]
    assert row["avg_gap"] == gaps_to_retrain(metrics, retrain, False)["avg_gap"]
    assert row["rte"] == pytest.approx(10.0 / 2.0)  # the Retrain row's time over the run's


def test_a_retrain_row_of_another_split_is_refused_not_paired(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(bench_run, "run_process", finished_run(tmp_path, [])[0])
    retrain_rows(tmp_path / "results", [1], split_key="another")
    with pytest.raises(SystemExit):
        main(ngrad_grid(tmp_path))
    said = " ".join(capsys.readouterr().err.split())
    assert f"failed: {NGRAD_ROW}: its Retrain row {RETRAIN_ROW} is of another split" in said
    assert not (tmp_path / "results" / NGRAD_ROW).exists()


def grid_runs(logs: Path) -> list[int]:
    """The pids of live `camu fit` processes of the grid whose runs log under `logs`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and " fit " in command and str(logs) in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow  # 15-20 s of benches and runs starting (make test-all)
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="lists processes through /proc")
def test_a_sigkilled_bench_leaves_no_run_going_and_the_rerun_runs_each_cell_once(tmp_path: Path, tiny_npz: Path):
    command = [*tiny_grid(tmp_path, tiny_npz, [1, 2]), "--jobs", "2"]  # two Retrain cells at once
    logs = tmp_path / "logs"
    bench = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                             start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not grid_runs(logs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert grid_runs(logs), "the grid's runs never started"
    time.sleep(1.0)
    os.killpg(bench.pid, signal.SIGKILL)  # the runs are in sessions of their own: only their bench dies
    bench.wait()
    time.sleep(3.0)
    assert grid_runs(logs) == []  # was: both runs went on as orphans
    rerun = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    rows = {path.relative_to(tmp_path / "rows").as_posix(): json.loads(path.read_text())
            for path in (tmp_path / "rows").glob("**/seed*.json")}  # fmt: skip
    expected = {f"mnist/random/retrain/seed{seed}.json" for seed in (1, 2)}
    assert set(rows) == expected and all(row["metrics"]["status"] == "ok" for row in rows.values())
    said = " ".join(rerun.stderr.split())
    written = int(said.split("grid: ")[-1].split(" rows written")[0])
    before = int(said.split(" rows current (skipped)")[0].split(", ")[-1])
    assert written + before == len(expected)  # every cell once: what the killed bench wrote, and the rest now
