"""Runs started together each get a folder of their own, share the cache safely, and an interrupted run says so."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading

import lightning as L
import pytest

from tests.test_cli import REPO, run_camu


def fit_when_all_are_ready(barrier, args: list[str]) -> None:
    """One `camu fit` in a process of its own, started when every process of the test is ready."""
    from camu_lightning.cli import main

    barrier.wait()
    main(args)


@pytest.mark.slow  # 30-40 s of processes (make test-all): the fast suite keeps under 5 minutes
def test_runs_started_together_get_their_own_folders_and_train_the_original_once(tmp_path, tiny_npz) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    common = ["fit", "--config", str(REPO / "configs/demo_camu.yaml"), "--data.dataset", str(tiny_npz)]
    common += ["--original.epochs", "1", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
    common += ["--trainer.default_root_dir", str(tmp_path / "runs"), "--cache_dir", str(tmp_path / "cache")]
    processes = [
        context.Process(target=fit_when_all_are_ready, args=(barrier, [*common, "--seed_everything", str(seed)]))
        for seed in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0] * 4
    folders = sorted((tmp_path / "runs" / "lightning_logs").iterdir())
    assert [folder.name for folder in folders] == [f"version_{n}" for n in range(4)]
    results = [json.loads((folder / "results.json").read_text()) for folder in folders]
    assert sorted(run["seed"] for run in results) == [0, 1, 2, 3]  # four complete runs, none overwritten
    for folder, run in zip(folders, results, strict=True):
        assert f"seed_everything: {run['seed']}" in (folder / "config.yaml").read_text()
        writers = {event.name.split(".")[-2] for event in folder.glob("events.out.tfevents.*")}  # by process id
        assert len(writers) == 1, f"{folder.name} holds event files of several processes"
    sources = sorted(run["original_source"] for run in results)
    assert sources == ["cache", "cache", "cache", "trained"]  # the others waited for the first and read its entry


class InterruptInSecondEpoch(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt


def test_an_interrupted_run_leaves_results_that_say_so(tmp_path, tiny_npz) -> None:
    callback = f"--trainer.callbacks+={__name__}.InterruptInSecondEpoch"
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", "3", callback)
    assert exit_info.value.code == 1
    (written,) = (tmp_path / "runs").glob("**/results.json")
    results = json.loads(written.read_text())
    assert results["status"] == "interrupted" and results["epoch"] == 1 and results["method"] == "CaMU"


def test_results_and_cache_entries_follow_the_umask(tmp_path, tiny_npz) -> None:
    previous = os.umask(0o002)  # a group-shared folder
    try:
        run_camu(tmp_path, tiny_npz)
    finally:
        os.umask(previous)
    written = [tmp_path / "runs" / "results.json", tmp_path / "runs" / "split.json"]
    written += list((tmp_path / "cache").glob("*/*.pt"))
    assert len(written) >= 3
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in written} == {path.name: 0o664 for path in written}


def test_opening_the_cache_removes_what_dead_writers_left_and_keeps_live_ones(tmp_path) -> None:
    from camu_lightning.cache import CheckpointCache
    from camu_lightning.utils.files import _host

    finished = multiprocessing.get_context("spawn").Process(target=os.getpid)
    finished.start()
    finished.join()
    folder = tmp_path / "original"
    folder.mkdir()
    dead = folder / f".abc.pt.{_host()}.{finished.pid}.0123abcd.tmp"
    live = folder / f".abc.pt.{_host()}.{os.getpid()}.4567cdef.tmp"
    other_host = folder / f".abc.pt.elsewhere.{finished.pid}.89abcdef.tmp"
    for path in (dead, live, other_host):
        path.write_bytes(b"")
    CheckpointCache(tmp_path)
    assert sorted(path.name for path in folder.iterdir()) == sorted([live.name, other_host.name])


def hold_the_lock_until_killed(path: str, ready) -> None:
    from filelock import FileLock

    held = FileLock(path)  # kept referenced: a collected FileLock releases its lock
    held.acquire()
    ready.set()
    threading.Event().wait()


def test_a_lock_held_by_a_killed_process_does_not_block(tmp_path) -> None:
    from filelock import FileLock, Timeout

    context = multiprocessing.get_context("spawn")
    ready, lock = context.Event(), str(tmp_path / "entry.pt.lock")
    holder = context.Process(target=hold_the_lock_until_killed, args=(lock, ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(timeout=60)
        with pytest.raises(Timeout):
            FileLock(lock).acquire(timeout=0.2)  # held while its process lives
    finally:
        holder.kill()
        holder.join()
    FileLock(lock).acquire(timeout=5)  # freed by the operating system when the holder died
