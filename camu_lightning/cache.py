"""Content-keyed checkpoint cache: one file per set of settings that determines a model's weights.

The key hashes the sorted-key JSON of exactly those settings (never paths, workers or logging). Files are
written to a temporary name and renamed, so a crash never leaves a half-written entry; an entry that cannot
be read, or whose stored settings differ from the key's, is refused with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from camu_lightning.keys import cache_key
from camu_lightning.utils.files import atomic_write, check_writable, remove_dead_writers_temporaries

log = logging.getLogger(__name__)


class CacheError(RuntimeError):
    """A cache entry that exists but cannot be trusted."""


def load_state_dict(path: Path, what: str, remedy: str = "delete it to rebuild it") -> dict[str, Any]:
    """torch.load with weights_only=True, turning every read failure into a one-line error ending in `remedy`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's own text advises weights_only=False: never for a file we read
        if "Unsupported global" in str(error):  # a pickle of objects: a checkpoint, but not of plain tensors
            raise CacheError(f"{what} {path} holds objects other than tensors and plain values; {remedy}") from error
        raise CacheError(f"{what} {path} is unreadable (not a file torch.save wrote); {remedy}") from error
    except (OSError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, IndexError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CacheError(f"{what} {path} is unreadable ({first_line}); {remedy}") from error


def weights_digest(state_dict: dict[str, Any]) -> str:
    """A hash of every tensor's name, dtype, shape and bytes: equal exactly when the weights are."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def state_digest(state: Any, prefix: str = "") -> str:
    """`weights_digest` of a nested state (dicts and lists of tensors, as SISA's shards or Unroll's pass are kept);
    its other values (counts, settings) enter by their text."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, torch.Tensor):
            tensors[name] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}.{key}")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, f"{name}.{index}")
        else:
            tensors[name] = torch.frombuffer(bytearray(repr(value).encode() or b" "), dtype=torch.uint8)

    walk(state, prefix)
    return weights_digest(tensors)


# Every kind of entry: the originals, training-time state, unlearned models (Retrain), evaluations, and `camu
# score`'s records and forget sets.
KINDS = ("original", "state", "unlearned", "evaluation", "forget_scores", "forget_sets")


def check_cache_writable(root: str | Path) -> None:
    """Refuse, before anything runs, a cache folder or any of its kinds' folders that cannot be written (one line
    naming it): a run must not fail at its first save, after the work, with a traceback."""
    check_writable(root, "cache_dir")
    for kind in KINDS:
        check_writable(Path(root) / kind, f"cache_dir's {kind}/ folder")


class CheckpointCache:
    """Entries under `<root>/<kind>/<key>.pt`, each holding {"settings": ..., "state_dict": ..., "extra": ...}."""

    saves = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # Opening the cache clears what writers killed mid-write left behind (their hidden temporaries).
        for folder in (path for path in self.root.glob("*") if path.is_dir()):
            for removed in remove_dead_writers_temporaries(folder):
                log.info("cache: removed %s, left by a writer that died", removed)

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

    def load_or_create(
        self, kind: str, settings: dict[str, Any], create: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """(entry, created): the stored entry, or `create()`'s state_dict stored with its creation time
        (`extra["time_create_s"]`) when there is none; under the entry's lock (`locked`)."""
        path = self.path(kind, cache_key(settings))
        with self.locked(kind, settings):
            entry = self.load(kind, settings)
            if entry is not None:
                log.info("%s: cached %s", kind, path)
                return entry, False
            log.info("%s: none cached for these settings; creating it into %s", kind, path)
            started = time.perf_counter()
            state_dict = create()
            extra = {"time_create_s": time.perf_counter() - started}
            self.save(kind, settings, state_dict, extra)
            return {"settings": settings, "state_dict": state_dict, "extra": extra}, True

    @contextmanager
    def locked(self, kind: str, settings: dict[str, Any]) -> Iterator[None]:
        """The entry's lock held: a second process that needs the same entry waits for the first to create it and
        then reads it. The lock is the operating system's (flock), so a process killed while creating frees it."""
        path = self.path(kind, cache_key(settings))
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path.with_name(f"{path.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("%s: another process is creating %s; waiting for it", kind, path)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def save(self, kind: str, settings: dict[str, Any], state_dict: dict[str, Any], extra: dict[str, Any]) -> Path:
        path = self.path(kind, cache_key(settings))
        entry = {"settings": json.loads(json.dumps(settings, default=str)), "state_dict": state_dict, "extra": extra}
        atomic_write(path, lambda temporary: torch.save(entry, temporary))
        return path


class NoCache:
    """The cache's interface with nothing stored: every entry is created when needed (the Python API's default)."""

    saves = False

    def load(self, kind: str, settings: dict[str, Any]) -> None:
        return None

    def load_or_create(
        self, kind: str, settings: dict[str, Any], create: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        started = time.perf_counter()
        state_dict = create()
        return {
            "settings": settings,
            "state_dict": state_dict,
            "extra": {"time_create_s": time.perf_counter() - started},
        }, True

    def save(self, kind: str, settings: dict[str, Any], state_dict: dict[str, Any], extra: dict[str, Any]) -> None:
        return None

    def locked(self, kind: str, settings: dict[str, Any]) -> AbstractContextManager[None]:
        return nullcontext()

    def path(self, kind: str, key: str) -> str:
        return f"(not cached: {kind} {key})"
