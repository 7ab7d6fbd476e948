"""SIGTERM (`kill`, `timeout`, a scheduler's stop) ends a `camu` process at once, with exit status 143.

Lightning's own handler only sets a flag that its loops read between batches. A signal landing after a fit's last
check (in its end hooks, its teardown) was lost: SISA went on through every remaining shard stage, and a run went on
to its evaluation. And a stop Lightning did catch ended the process with status 0, as if the run had succeeded.
Lightning calls the handler found in place after its own, so this one also runs inside a fit: the exception unwinds
through Lightning's interrupt handling (its teardown) and our atomic writes (no half-written file is left).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from types import FrameType

EXIT_STATUS = 128 + signal.SIGTERM  # the shell's status for a process ended by SIGTERM
PARENT_ENV = "CAMU_STOP_WITH_PARENT"  # the pid of the process whose end ends this one (`camu bench` sets it)
PARENT_POLL_S = 0.25
PR_SET_PDEATHSIG = 1  # prctl(2)
GRACE_S = 1.0  # after SIGTERM, the longest a run may unwind (a main thread in a C call, e.g. importing torch, cannot)


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def stop_on_sigterm() -> None:
    """SIGTERM raises SystemExit(143) wherever this process is (its main thread)."""
    signal.signal(signal.SIGTERM, stop)


def stop_with_parent() -> None:
    """Where `CAMU_STOP_WITH_PARENT` names this process's parent (a `camu bench` run), end this process once that
    parent is gone, whatever ended it (SIGKILL, an OOM killer, a closed terminal): a grid's runs never outlive it as
    orphans. On Linux the kernel kills it with its parent (PR_SET_PDEATHSIG: at once, even while a C call such as
    importing torch holds the interpreter, which delayed a signal handler by seconds); elsewhere, and for a parent
    that died before this line ran, a thread watches the parent and ends the process as SIGTERM does. The variable
    is removed, so processes this one starts (DDP ranks) do not inherit it."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_S)
        os._exit(EXIT_STATUS)

    threading.Thread(target=watch, name="camu-stop-with-parent", daemon=True).start()
