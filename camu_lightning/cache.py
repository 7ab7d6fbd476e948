"""Content-keyed checkpoint cache: one file per set of settings that determines a model's weights.

The key hashes the sorted-key JSON of exactly those settings (never paths, workers or logging). Files are
written to a temporary name and renamed, so a crash never leaves a half-written entry; an entry that cannot
be read, or whose stored settings differ from the key's, is refused with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch


class CacheError(RuntimeError):
    """A cache entry that exists but cannot be trusted."""


def cache_key(settings: dict[str, Any]) -> str:
    """A short, stable hash of the settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(temporary_path)`, then rename the result onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, content: Any) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n"))


def load_state_dict(path: Path, what: str) -> dict[str, Any]:
    """torch.load with weights_only=True, turning every read failure into a one-line error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CacheError(f"{what} {path} is unreadable ({first_line}); delete it to rebuild it") from error


class CheckpointCache:
    """Entries under `<root>/<kind>/<key>.pt`, each holding {"settings": ..., "state_dict": ..., "extra": ...}."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def load(self, kind: str, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The entry stored for these settings, or None when there is none."""
        path = self.path(kind, cache_key(settings))
        if not path.exists():
            return None
        entry = load_state_dict(path, f"cached {kind} checkpoint")
        if not isinstance(entry, dict) or "state_dict" not in entry or "settings" not in entry:
            raise CacheError(f"cached {kind} checkpoint {path} has no state_dict/settings; delete it to rebuild it")
        if json.dumps(entry["settings"], sort_keys=True, default=str) != json.dumps(
            settings, sort_keys=True, default=str
        ):
            raise CacheError(f"cached {kind} checkpoint {path} was stored for other settings; delete it to rebuild it")
        return entry

    def save(self, kind: str, settings: dict[str, Any], state_dict: dict[str, Any], extra: dict[str, Any]) -> Path:
        path = self.path(kind, cache_key(settings))
        entry = {"settings": json.loads(json.dumps(settings, default=str)), "state_dict": state_dict, "extra": extra}
        atomic_write(path, lambda temporary: torch.save(entry, temporary))
        return path
