"""SIGTERM (`kill`, `timeout`, a scheduler's stop) ends a `camu` process at once, with exit status 143.

Lightning's own handler only sets a flag that its loops read between batches. A signal landing after a fit's last
check (in its end hooks, its teardown) was lost: SISA went on through every remaining shard stage, and a run went on
to its evaluation. And a stop Lightning did catch ended the process with status 0, as if the run had succeeded.
Lightning calls the handler found in place after its own, so this one also runs inside a fit: the exception unwinds
through Lightning's interrupt handling (its teardown) and our atomic writes (no half-written file is left).
"""

from __future__ import annotations

import signal
from types import FrameType

EXIT_STATUS = 128 + signal.SIGTERM  # the shell's status for a process ended by SIGTERM


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def stop_on_sigterm() -> None:
    """SIGTERM raises SystemExit(143) wherever this process is (its main thread)."""
    signal.signal(signal.SIGTERM, stop)
