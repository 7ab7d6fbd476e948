"""A grid cell's claim: the lock that lets one process at a time run a cell, shared with the cell's run.

The claim is an flock on a file beside the cell's row. The run (`camu fit`, a child of `camu bench`) inherits the
lock's open file, so the claim lives as long as either of them: a bench killed by any signal (SIGKILL included)
frees it only once its run has ended too (the run ends within a second of its bench, `sigterm.stop_with_parent`),
and a rerun never starts a cell whose run is still going. The operating system frees the claim of a process that
dies, so no claim outlives its holders.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import IO

WAIT_POLL_S = 2.0  # how often a method cell looks whether its Retrain's claim has been freed


class Claimed(Exception):
    """The cell is being run by another `camu bench` on the same results folder (or was finished by it)."""


class Postponed(Exception):
    """The cell waits for a row it needs (its split's Retrain) that no process is computing now."""


def claim_path(results: Path, row: Path) -> Path:
    return results / row.parent / f".{row.name}.claim"


def claim(results: Path, row: Path) -> IO:
    """The cell's claim, held until the returned file is closed (and every child that inherited it has ended);
    raises Claimed when another process holds it."""
    path = claim_path(results, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise Claimed(f"{row} is being run by another camu bench") from None
    return handle


def being_run(results: Path, row: Path) -> bool:
    """Whether another process holds the cell's claim now."""
    path = claim_path(results, row)
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def wait_while_run(results: Path, row: Path, poll_s: float = WAIT_POLL_S) -> None:
    """Return once no process holds the cell's claim."""
    while being_run(results, row):
        time.sleep(poll_s)
