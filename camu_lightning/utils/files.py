"""Files written so that no reader ever sees half of one: a temporary beside the target, then a rename.

A temporary is created like any file the user makes (mode 0666 less the umask, so a group-shared cache or run
folder stays shared) and is named after its writer, `.<name>.<host>.<pid>.<token>.tmp`, so that a later look at
the folder can remove what a writer killed mid-write left behind, without touching a live writer's file.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _host() -> str:
    return socket.gethostname().replace(".", "_")


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call `write(temporary_path)`, then rename the result onto `path`; on any failure remove the temporary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as to any file
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path: Path, content: Any) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n"))


def remove_dead_writers_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries in `folder` whose writer, a process of this host, no longer runs; returns them."""
    removed = []
    for temporary in folder.glob(".*.tmp"):
        parts = temporary.name.split(".")
        if len(parts) < 6 or parts[-4] != _host() or not parts[-3].isdigit() or _alive(int(parts[-3])):
            continue
        temporary.unlink(missing_ok=True)
        removed.append(temporary)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def check_writable(folder: str | Path, setting: str) -> None:
    """Refuse, before anything runs, a folder that cannot be created or written: one line naming the setting."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{setting} {folder} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{setting} {folder} is not writable: {existing} does not let this user write in it")
