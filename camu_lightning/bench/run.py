"""`camu bench`: run a grid's cells as `camu fit` processes and keep one committed row per finished cell.

    camu bench --grid configs/bench/paper.yaml              # every missing row, one run at a time
    camu bench --grid configs/bench/paper.yaml --jobs 2     # two runs at a time on this machine
    camu bench --grid configs/bench/paper.yaml --launcher submitit --slurm_partition gpu   # a Slurm job array

A row (`results/<dataset>/<scenario>/<method>/seed<k>.json`) holds the run's results.json numbers, its config hash,
command and machine, and is written atomically when the run ends, so an interrupted grid loses only the runs in
flight, and a rerun skips every row whose config hash matches (saying how many).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from camu_lightning.bench.aggregate import read_row
from camu_lightning.bench.cell_claim import Claimed, Postponed, being_run, claim, wait_while_run
from camu_lightning.bench.grid import Cell, cells, read_grid
from camu_lightning.bench.machine import machine
from camu_lightning.bench.originals import seed_caches
from camu_lightning.gaps import with_gaps
from camu_lightning.utils.files import check_writable, write_json
from camu_lightning.utils.sigterm import PARENT_ENV
from camu_lightning.utils.terminal import console, print_error, set_up_terminal

ROW_VERSION = 1
RUNNING: set[subprocess.Popen] = set()  # this process's runs in flight, stopped with the grid
STOPPING = threading.Event()  # set when the grid is stopped: a queued cell then starts no run


def run_process(command: list[str], log, quiet: bool, threads: int | None = None, claim_fd: int | None = None) -> int:
    """A run's process to its end (its exit status), known to `stop_runs` meanwhile; with `threads`, torch's
    intra-op threads of the run (OMP_NUM_THREADS), so runs side by side do not fight over the cores. The run ends
    with this process, whatever ends it (`sigterm.stop_with_parent`), and holds the cell's claim (`claim_fd`) too."""
    if STOPPING.is_set():
        raise RuntimeError("not started: the grid was stopped")
    # A session of its own: Ctrl-C reaches the grid alone, which ends its runs (SIGTERM: exit 143, no traceback).
    output = {"stdout": log, "stderr": subprocess.STDOUT} if quiet else {}
    environment = os.environ | {PARENT_ENV: str(os.getpid())}
    environment |= {"OMP_NUM_THREADS": str(threads)} if threads is not None else {}
    kept = (claim_fd,) if claim_fd is not None else ()
    process = subprocess.Popen(command, start_new_session=True, env=environment, pass_fds=kept, **output)
    RUNNING.add(process)
    try:
        return process.wait()
    finally:
        RUNNING.discard(process)


def stop_runs() -> None:
    """No queued cell starts a run from now on, and the runs in flight are ended (they would otherwise run on as
    orphans, holding the cores, with no grid left to write their rows)."""
    STOPPING.set()
    for process in list(RUNNING):
        process.terminate()


def stop_runs_on_sigterm() -> None:
    """SIGTERM (`kill`, a scheduler's stop) stops the grid as Ctrl-C does, with exit status 143."""

    def stop(signum: int, frame) -> None:
        stop_runs()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def finished(cell: Cell, results: Path) -> bool:
    """Whether the cell's row exists for its current config hash (a row of another hash is rerun)."""
    path = results / cell.row
    if not path.exists():
        return False
    try:
        return read_row(path).get("config_hash") == cell.config_hash
    except ValueError as error:  # a truncated file or JSON that is not a row: said, and its cell is rerun
        console.print(f"{error}: rerunning it", highlight=False, soft_wrap=True)
        return False


def retrain_row(cell: Cell) -> Path:
    """The row of the Retrain a method cell's gaps are measured against: same dataset, scenario, seed and grid."""
    name = "_".join(part for part in ("retrain", cell.label) if part)
    return Path(cell.dataset) / cell.scenario / name / f"seed{cell.seed}.json"


def retrain_results(cell: Cell, results: Path) -> dict[str, Any]:
    """The finished Retrain row's results for a method cell, waiting while another process runs that Retrain;
    raises Postponed where it has no row and nothing is computing one (it failed, or is in no grid run now)."""
    row = retrain_row(cell)
    if being_run(results, row):
        console.print(f"{cell.row}: waiting for {row}, run by another camu bench", highlight=False, soft_wrap=True)
        wait_while_run(results, row)
    if not (results / row).is_file():
        raise Postponed(f"{cell.row}: its Retrain {row} has no row (failed, or in no grid run now)")
    return read_row(results / row)["metrics"]


def run_cell(cell: Cell, results: Path, logs: Path, jobs: int) -> Path:
    """The cell, claimed for the run (another `camu bench` on the same results skips it) unless another process
    finished it meanwhile; a method cell runs only once its Retrain has a row (`retrain_results`), so no row is
    written without its gaps. With `jobs` runs at a time, each is quiet (its output in its log) and gets cores /
    jobs threads; one run alone keeps torch's own thread count (the committed rows' numbers were computed with it)."""
    with claim(results, cell.row) as held:
        if finished(cell, results):
            raise Claimed(f"{cell.row} was finished by another camu bench")
        retrain = retrain_results(cell, results) if cell.method != "retrain" else None
        return run_claimed_cell(cell, results, logs, jobs, held.fileno(), retrain)


def run_claimed_cell(
    cell: Cell, results: Path, logs: Path, jobs: int, claim_fd: int, retrain: dict[str, Any] | None
) -> Path:
    """One `camu fit` in a process of its own, then the cell's row with its gaps to `retrain` (a method cell's
    Retrain row, where the run did not find that Retrain's results among the runs beside it); raises with the run's
    last line on failure."""
    # The running interpreter, not a `camu` script beside it: a checkout used without installing it has none.
    command = [sys.executable, "-m", "camu_lightning", *cell.command(logs)]
    log_file = logs / cell.row.with_suffix(".log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    started, started_at = time.perf_counter(), time.time()
    quiet, threads = jobs > 1, max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    with log_file.open("w") as log:
        returncode = run_process(command, log, quiet, threads, claim_fd)
    written = cell.run_folder(logs) / "results.json"
    # This run's own results.json (an older run of the cell may have left one in the same folder).
    metrics = json.loads(written.read_text()) if written.is_file() and written.stat().st_mtime >= started_at else {}
    if returncode != 0 and metrics.get("status") != "diverged":
        last = log_file.read_text().strip().splitlines()[-1:] if quiet else []
        raise RuntimeError(f"{cell.row} failed (exit {returncode}){': ' + last[0] if last else ''}")
    if not metrics:
        raise RuntimeError(f"{cell.row} failed: its run wrote no {written}")
    if retrain is not None and metrics.get("status") == "ok" and "avg_gap" not in metrics:
        metrics = with_gaps(metrics, [retrain])
        if "avg_gap" not in metrics:
            raise RuntimeError(
                f"{cell.row}: its Retrain row {retrain_row(cell)} is of another split (split_key "
                f"{retrain.get('split_key')}, the run's {metrics.get('split_key')}); not written"
            )
    metrics.pop("config", None)
    row = {
        "row_version": ROW_VERSION,
        "dataset": cell.dataset,
        "scenario": cell.scenario,
        "method_key": cell.row.parent.name,
        "variant": cell.variant,
        "seed": cell.seed,
        "config_hash": cell.config_hash,
        "config": cell.config,
        "command": ["camu", *cell.command(logs)],
        "machine": machine(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": time.perf_counter() - started,
        "metrics": metrics,
    }
    write_json(results / cell.row, row)
    return results / cell.row


def submitit_executor(options: argparse.Namespace, logs: Path):
    import submitit

    executor = submitit.AutoExecutor(folder=logs / "submitit", cluster=options.submitit_cluster)
    executor.update_parameters(timeout_min=options.timeout_min, slurm_array_parallelism=options.jobs)
    if options.slurm_partition:
        executor.update_parameters(slurm_partition=options.slurm_partition)
    if options.gpus_per_node:
        executor.update_parameters(gpus_per_node=options.gpus_per_node)
    return executor


def outcomes(phase: list[Cell], options: argparse.Namespace, results: Path, logs: Path, pool: ThreadPoolExecutor):
    """(cell, its result getter) as each run ends: local threads each waiting on a process, or a submitit array."""
    if options.launcher == "submitit":
        count = len(phase)
        jobs = submitit_executor(options, logs).map_array(run_cell, phase, [results] * count, [logs] * count,
                                                          [options.jobs] * count)  # fmt: skip
        yield from ((cell, job.result) for cell, job in zip(phase, jobs, strict=True))
        return
    futures = {pool.submit(run_cell, cell, results, logs, options.jobs): cell for cell in phase}
    yield from ((futures[future], future.result) for future in as_completed(futures))


def run_grid(options: argparse.Namespace) -> list[str]:
    """Every missing row; returns the failures' messages."""
    grid_cells = cells(read_grid(Path(options.grid)), Path(options.configs))
    results, logs = Path(options.results), Path(options.logs)
    if not options.dry_run:  # before any run: an unwritable folder is one line, not a traceback after the first run
        check_writable(results, "--results")
        check_writable(logs, "--logs")
    todo = [cell for cell in grid_cells if not finished(cell, results)]
    console.print(f"grid: {len(grid_cells)} cells, {len(grid_cells) - len(todo)} rows current (skipped), "
                  f"{len(todo)} to run", highlight=False)  # fmt: skip
    if options.dry_run or not todo:
        for cell in todo:
            console.print("camu " + " ".join(cell.command(logs)), highlight=False, soft_wrap=True)
        return []
    for copied in seed_caches(results, {cell.cache_dir for cell in todo}):  # the committed starting points
        console.print(f"kept original: {copied}", highlight=False, soft_wrap=True)
    # Retrains first: every later run of the same split then finds its gap partner.
    phases = [[c for c in todo if c.method == "retrain"], [c for c in todo if c.method != "retrain"]]
    failures: list[str] = []
    diverged: list[str] = []
    postponed: list[str] = []
    written = claimed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress, ThreadPoolExecutor(max_workers=options.jobs) as pool:
            task = progress.add_task("grid", total=len(todo))
            try:
                for phase in filter(None, phases):
                    for cell, result in outcomes(phase, options, results, logs, pool):
                        progress.update(task, description=str(cell.row.with_suffix("")))
                        try:
                            outcome = read_row(result())["metrics"]
                            written += 1
                            if outcome.get("status") == "diverged":  # an outcome of the settings and seed: kept
                                diverged.append(f"{cell.row}: {outcome['error']}")
                        except Claimed:
                            claimed += 1
                        except Postponed as waiting:  # no gaps without a Retrain row: run it once that row exists
                            postponed.append(str(waiting))
                        except Exception as error:  # a failed cell is reported; the grid goes on
                            failures.append(str(error).splitlines()[0])
                        progress.advance(task)
            except BaseException:  # Ctrl-C or SIGTERM: nothing queued starts, the runs in flight end
                stop_runs()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    except (KeyboardInterrupt, SystemExit) as stop:
        code = 130 if isinstance(stop, KeyboardInterrupt) else stop.code
        console.print(f"stopped: {written} rows written, {len(todo) - written - claimed} cells left to run "
                      "(the same command resumes)", highlight=False)  # fmt: skip
        raise SystemExit(code) from None
    skipped = f"; {claimed} run by another camu bench on {results}" if claimed else ""
    skipped += f"; {len(postponed)} postponed" if postponed else ""
    of_them = f" ({len(diverged)} of them diverged runs)" if diverged else ""
    console.print(f"grid: {written} rows written{of_them}{skipped}", highlight=False)
    for outcome in postponed:
        console.print(f"postponed: {outcome}; rerun once it has one", highlight=False, soft_wrap=True)
    for outcome in diverged:
        console.print(f"diverged: {outcome} (its row records it; delete the row to run it again)", highlight=False,
                      soft_wrap=True)  # fmt: skip
    return failures


def bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camu bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", required=True, help="the grid YAML, e.g. configs/bench/paper.yaml")
    parser.add_argument("--results", default="results", help="folder of the committed rows")
    parser.add_argument("--logs", default="lightning_logs/bench", help="folder of the runs' own outputs and logs")
    parser.add_argument("--configs", default="configs", help="folder of the method configs")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (Slurm: array parallelism)")
    parser.add_argument("--launcher", choices=("local", "submitit"), default="local", help="where runs execute")
    parser.add_argument("--submitit_cluster", help="submitit cluster: slurm, local or debug (default: detected)")
    parser.add_argument("--slurm_partition", help="Slurm partition of the job array")
    parser.add_argument("--gpus_per_node", type=int, default=0, help="GPUs per Slurm job")
    parser.add_argument("--timeout_min", type=int, default=240, help="time limit of each Slurm job (minutes)")
    parser.add_argument("--dry_run", action="store_true", help="print the missing runs' commands; run nothing")
    return parser


def main(args: list[str]) -> None:
    set_up_terminal()
    options = bench_parser().parse_args(args)
    if options.jobs < 1:
        print_error(f"--jobs must be >= 1, got {options.jobs}")
    stop_runs_on_sigterm()
    try:
        failures = run_grid(options)
    except ValueError as error:
        print_error(str(error))
    for failure in failures:
        console.print(f"failed: {failure}", highlight=False, soft_wrap=True)
    if failures:
        sys.exit(1)
