"""Timing helpers of the speed benchmark: rows taken in rotation, medians, peak memory, the machine."""

from __future__ import annotations

import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

console = Console()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "")
    return {
        "cpu": model or platform.processor(),
        "avx512": " avx512f " in flags,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def timed_in_rotation(rows: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each row, `repeats` times, the rows taking turns so that machine drift hits them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, run in rows.items():
            seconds[name].append(run())
    return seconds


def row_results(seconds: dict[str, list[float]], count: int) -> list[dict[str, Any]]:
    """One result per row: the median time, its rate over `count` items, every repeat, peak RSS so far."""
    return [
        {
            "row": name,
            "seconds": statistics.median(times),
            "per_s": count / statistics.median(times),
            "repeats_s": times,
            "peak_rss_mb": peak_rss_mb(),
        }
        for name, times in seconds.items()
    ]


def speed_ratio(row: dict[str, Any], baseline: dict[str, Any]) -> float:
    """Speed of `row` over `baseline`: the median over rotations of baseline time / row time within one rotation,
    so that drift between rotations cancels (the ratio of the two medians keeps it)."""
    return statistics.median(b / r for r, b in zip(row["repeats_s"], baseline["repeats_s"], strict=True))


def stopwatch(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


# A small parent for the timed run: a child's peak RSS counts the pages it shares with its parent at fork, so
# spawned from this process (over 1 GB by then) the run would be charged for the benchmark's own memory.
LAUNCHER = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run_with_peak_rss(command: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of a command run to completion; it fails loudly if the command does."""
    started = time.perf_counter()
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, *command], check=True, capture_output=True, text=True)
    return time.perf_counter() - started, int(launched.stdout.split()[-1]) / 1024


def show(title: str, rows: list[dict[str, Any]], unit: str) -> None:
    table = Table(title=title)
    for column in ("row", "seconds", unit, "peak RSS (MB)", "each repeat (s)"):
        table.add_column(column, justify="left" if column == "row" else "right")
    for row in rows:
        rate = "" if row["per_s"] is None else f"{row['per_s']:.0f}"
        repeats = " ".join(f"{value:.2f}" for value in row.get("repeats_s", []))
        table.add_row(row["row"], f"{row['seconds']:.2f}", rate, f"{row['peak_rss_mb']:.0f}", repeats)
    console.print(table)
