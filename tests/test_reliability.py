"""Bad input and faults end with one line naming the culprit, exit status 2, and nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml

from camu_lightning.cli import main

REPO = Path(__file__).resolve().parents[1]


def one_line_exit(args: list[str], capsys) -> str:
    """The error line of a command that must end with exit status 2 and no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1
    return " ".join(err[err.index("error:") :].split())  # the error to the end (rich may wrap a long line)


def one_cell_grid(tmp_path: Path) -> Path:
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"datasets": ["mnist"], "scenarios": ["random"], "methods": ["camu"], "seeds": [1]}))
    return grid


@pytest.mark.parametrize(
    ("content", "said"),
    [("[1, 2]", "is a JSON list, not a row"), ('{"dataset": "mnist", "seed": 1}', "lacks scenario, method_key")],
)
def test_a_json_file_that_is_not_a_row_is_named_in_one_line(tmp_path: Path, capsys, content: str, said: str) -> None:
    row = tmp_path / "results" / "mnist" / "random" / "camu" / "seed1.json"
    row.parent.mkdir(parents=True)
    row.write_text(content)
    grid = one_cell_grid(tmp_path)
    report = ["report", "--grid", str(grid), "--results", str(tmp_path / "results"), "--docs", str(tmp_path / "docs")]
    line = one_line_exit(report, capsys)
    assert str(row) in line and said in line and not (tmp_path / "docs").exists()
    main(["bench", "--grid", str(grid), "--results", str(tmp_path / "results"), "--dry_run"])
    out = " ".join(capsys.readouterr().err.split())
    assert f"{row} {said.split(',')[0]}" in out and "rerunning it" in out and "1 to run" in out


def test_config_files_are_named_in_their_errors(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.yaml"
    assert one_line_exit(["fit", "--config", str(missing)], capsys) == f"error: config {missing} does not exist"
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("trainer:\n  max_epochs: [1\n")
    line = one_line_exit(["fit", "--config", str(malformed)], capsys)
    assert line.startswith(f"error: config {malformed} is not valid YAML at line 3") and "unicode string" not in line


@pytest.mark.parametrize("setting", ["--trainer.default_root_dir", "--cache_dir"])
def test_a_folder_under_a_regular_file_is_one_line_before_anything_runs(
    tmp_path: Path, tiny_npz: Path, capsys, setting: str
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    folders = {"--trainer.default_root_dir": str(tmp_path / "runs"), "--cache_dir": str(tmp_path / "cache")}
    folders[setting] = str(blocker / "sub")
    args = ["fit", "--config", str(REPO / "configs/demo_camu.yaml"), "--data.dataset", str(tiny_npz),
            "--trainer.enable_progress_bar=false", *(item for pair in folders.items() for item in pair)]  # fmt: skip
    line = one_line_exit(args, capsys)
    assert line == f"error: {setting[2:]} {blocker / 'sub'} cannot be created: {blocker} is a file, not a folder"
    assert not (tmp_path / "cache").exists() and not list((tmp_path / "runs").glob("**/version_*"))


def test_bench_refuses_an_unwritable_results_folder_before_any_run(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    args = ["bench", "--grid", str(one_cell_grid(tmp_path)), "--results", str(blocker / "rows"),
            "--logs", str(tmp_path / "logs")]  # fmt: skip
    line = one_line_exit(args, capsys)
    assert line == f"error: --results {blocker / 'rows'} cannot be created: {blocker} is a file, not a folder"
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("refusal", ["max_epochs", "random_bytes"])
def test_a_refused_run_leaves_no_version_folder(tmp_path: Path, tiny_npz: Path, capsys, refusal: str) -> None:
    checkpoint = tmp_path / "noise.pt"
    checkpoint.write_bytes(torch.randint(0, 256, (2000,), dtype=torch.uint8, generator=torch.Generator()).numpy())
    refused = {"max_epochs": ["--trainer.max_epochs", "0"], "random_bytes": ["--original.checkpoint", str(checkpoint)]}
    args = ["fit", "--config", str(REPO / "configs/demo_camu.yaml"), "--data.dataset", str(tiny_npz),
            "--trainer.enable_progress_bar=false", "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--cache_dir", str(tmp_path / "cache"), *refused[refusal]]  # fmt: skip
    line = one_line_exit(args, capsys)
    expected = {"max_epochs": "trainer.max_epochs must be", "random_bytes": f"{checkpoint} is unreadable"}
    assert expected[refusal] in line
    assert not list((tmp_path / "runs").glob("**/version_*"))


def tiny_grid(tmp_path: Path, dataset: Path, seeds: list[int], methods: tuple[str, ...] = ("retrain",)) -> list[str]:
    """`camu bench` arguments of a grid of these methods' cells on tiny data (one per seed each)."""
    overrides = ["--data.dataset", str(dataset), "--original.epochs", "1", "--trainer.max_epochs", "1",
                 "--data.eval_batch_size", "16", "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"datasets": ["mnist"], "scenarios": ["random"], "methods": list(methods),
                                    "seeds": seeds, "overrides": overrides}))  # fmt: skip
    return [sys.executable, "-m", "camu_lightning", "bench", "--grid", str(grid), "--results", str(tmp_path / "rows"),
            "--logs", str(tmp_path / "logs"), "--configs", str(REPO / "configs")]  # fmt: skip


def test_ctrl_c_ends_the_grids_run_and_starts_no_other(tmp_path: Path, tiny_npz: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) while the first of three cells runs: that run ends, no other
    cell starts, one line says what was written and what is left, exit 130. (SIGTERM takes the same path, exit 143:
    tests/test_bench_grid.py::test_sigterm_stops_the_runs_in_flight_with_the_grid.)"""
    signal_number, status = signal.SIGINT, 130
    # A terminal's foreground job takes Ctrl-C; a job started in the background by a script inherits SIGINT
    # ignored (POSIX shells), and so would this test's bench if pytest ran that way.
    bench = subprocess.Popen(tiny_grid(tmp_path, tiny_npz, [1, 2, 3]), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=REPO,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    first_log = tmp_path / "logs" / "mnist" / "random" / "retrain" / "seed1.log"
    deadline = time.monotonic() + 300  # a loaded machine starts Python with torch slowly
    while not first_log.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first_log.exists(), "the grid's first run never started"
    time.sleep(1.0)  # the first run is in flight
    os.killpg(bench.pid, signal_number)
    output, _ = bench.communicate(timeout=180)
    assert bench.returncode == status, output
    assert "Traceback" not in output and "stopped: 0 rows written, 3 cells left to run" in " ".join(output.split())
    assert sorted(p.name for p in (tmp_path / "logs").glob("**/*.log")) == ["seed1.log"]  # no other cell started
    assert not list((tmp_path / "rows").glob("**/seed*.json"))


@pytest.mark.slow  # 13-19 s of two benches and their runs (make test-all)
def test_two_benches_on_one_grid_run_each_cell_once(tmp_path: Path, tiny_npz: Path) -> None:
    command = tiny_grid(tmp_path, tiny_npz, [1, 2])
    benches = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
               for _ in range(2)]  # fmt: skip
    outputs = [" ".join(bench.communicate(timeout=240)[0].split()) for bench in benches]
    assert [bench.returncode for bench in benches] == [0, 0], outputs
    runs = sum(output.count("results.json") for output in outputs)  # each `camu fit` ends by naming its results
    assert runs == 2, outputs  # each cell once: the other process skipped it
    written = [int(re.search(r"grid: (\d+) rows written", output).group(1)) for output in outputs]
    assert sum(written) == 2, outputs
    rows = sorted((tmp_path / "rows").glob("**/seed*.json"))
    assert [row.name for row in rows] == ["seed1.json", "seed2.json"]
    assert all(json.loads(row.read_text())["metrics"]["status"] == "ok" for row in rows)


def test_a_cache_kind_folder_that_cannot_be_written_is_one_line_before_anything_runs(
    tmp_path: Path, tiny_npz: Path, capsys
) -> None:
    blocker = tmp_path / "cache" / "evaluation"  # a file where the evaluations' folder belongs
    blocker.parent.mkdir()
    blocker.write_text("")
    args = ["fit", "--config", str(REPO / "configs/demo_camu.yaml"), "--data.dataset", str(tiny_npz),
            "--trainer.enable_progress_bar=false", "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    line = one_line_exit(args, capsys)  # was: the original trained, then a traceback at the evaluation's save
    assert (
        line == f"error: cache_dir's evaluation/ folder {blocker} cannot be created: {blocker} is a file, not a folder"
    )
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["evaluation"]
    assert not list((tmp_path / "runs").glob("**/version_*"))


def test_an_evaluation_entry_is_created_under_its_lock(tmp_path: Path, tiny_npz: Path, monkeypatch) -> None:
    """A second run needing the same evaluation waits for the first and reads its entry, as for every other kind."""
    from camu_lightning.cache import CheckpointCache

    held: list[str] = []
    saved_while_held: list[bool] = []
    locked, save = CheckpointCache.locked, CheckpointCache.save

    def spy_locked(self, kind, settings):
        held.append(kind)
        try:
            with locked(self, kind, settings):
                yield
        finally:
            held.remove(kind)

    def spy_save(self, kind, settings, state_dict, extra):
        if kind == "evaluation":
            saved_while_held.append(kind in held)
        return save(self, kind, settings, state_dict, extra)

    monkeypatch.setattr(CheckpointCache, "locked", contextmanager(spy_locked))
    monkeypatch.setattr(CheckpointCache, "save", spy_save)
    main(["fit", "--config", str(REPO / "configs/demo_camu.yaml"), "--data.dataset", str(tiny_npz),
          "--trainer.enable_progress_bar=false", "--trainer.default_root_dir", str(tmp_path / "runs"),
          "--cache_dir", str(tmp_path / "cache"), "--trainer.max_epochs", "1", "--original.epochs", "1",
          "--stronger_attacks", "false"])  # fmt: skip
    assert saved_while_held == [True]
