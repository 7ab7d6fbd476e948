from pathlib import Path

import pytest
import torch

from camu_lightning.cache import CacheError, CheckpointCache
from camu_lightning.commands.score import starting_point
from camu_lightning.keys import cache_key
from camu_lightning.run.configured import configured_run

REPO = Path(__file__).resolve().parents[1]


def original_key(tmp_path: Path, dataset: Path, *overrides: str) -> str:
    config = str(REPO / "configs/demo_camu.yaml")
    run = configured_run(
        ["--config", config, "--data.dataset", str(dataset), "--trainer.default_root_dir", str(tmp_path), *overrides]
    )
    recipe = run.original
    return cache_key(starting_point(run).keys.original(recipe.training_settings(), recipe.precision))


def test_key_follows_exactly_the_settings_that_determine_the_weights(tmp_path: Path, tiny_npz: Path) -> None:
    base = original_key(tmp_path, tiny_npz)
    assert original_key(tmp_path, tiny_npz) == base
    for unrelated in (
        ["--data.num_workers", "2"],
        ["--seed_everything", "5"],
        ["--trainer.precision", "bf16-mixed"],
        ["--cache_dir", "elsewhere"],
        ["--data.forget_fraction", "0.3"],
    ):
        assert original_key(tmp_path, tiny_npz, *unrelated) == base, unrelated
    for relevant in (
        ["--original.lr", "0.01"],
        ["--original.seed", "1"],
        ["--original.epochs", "3"],
        ["--original.precision", "bf16-mixed"],
    ):
        assert original_key(tmp_path, tiny_npz, *relevant) != base, relevant
    moved = tmp_path / "moved" / "same.npz"
    moved.parent.mkdir()
    moved.write_bytes(tiny_npz.read_bytes())
    assert original_key(tmp_path, moved) == base  # a file's content, never its path


def test_a_cached_retrain_serves_only_runs_on_the_same_numerics_and_device_kind(
    tmp_path: Path, tiny_npz: Path, monkeypatch
) -> None:
    def retrain_key(*overrides: str) -> str:
        run = configured_run([
            "--config", str(REPO / "configs/mnist_retrain.yaml"), "--data.dataset", str(tiny_npz),
            "--trainer.default_root_dir", str(tmp_path), *overrides,
        ])  # fmt: skip
        return cache_key(starting_point(run).unlearned_key(run.trainer(), run.method))

    base = retrain_key()
    assert retrain_key("--data.num_workers", "2") == base
    assert retrain_key("--trainer.precision", "bf16-mixed") != base
    assert retrain_key("--trainer.callbacks", "[]") != base  # the memory layout
    assert retrain_key("--trainer.max_epochs", "3") != base
    # Its stored time is every RTE's numerator: a GPU run must not read a CPU Retrain's time.
    from lightning.pytorch.strategies import SingleDeviceStrategy

    monkeypatch.setattr(SingleDeviceStrategy, "root_device", property(lambda self: torch.device("cuda", 0)))
    assert retrain_key() != base


def test_entries_are_checked_on_load(tmp_path: Path) -> None:
    cache = CheckpointCache(tmp_path)
    settings = {"dataset": "x", "recipe": {"lr": 0.1}}
    path = cache.save("original", settings, {"w": torch.ones(2)}, {"time_original_s": 1.0})
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert torch.equal(cache.load("original", settings)["state_dict"]["w"], torch.ones(2))
    assert cache.load("original", {"dataset": "y"}) is None
    torch.save({"settings": {"dataset": "z"}, "state_dict": {}}, path)
    with pytest.raises(CacheError, match="was stored for other settings"):
        cache.load("original", settings)


def test_a_write_that_fails_midway_leaves_nothing_at_the_final_name(tmp_path: Path, monkeypatch) -> None:
    cache, settings = CheckpointCache(tmp_path), {"dataset": "x"}
    real_save = torch.save

    def save_then_fail(entry, destination):  # half an entry reaches the disk, then the process is interrupted
        real_save(entry, destination)
        with open(destination, "r+b") as handle:
            handle.truncate(64)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(KeyboardInterrupt):
        cache.save("original", settings, {"w": torch.ones(1000)}, {})
    assert list(tmp_path.rglob("*")) == [tmp_path / "original"]  # no entry, no temporary file
    assert cache.load("original", settings) is None


def test_load_or_create_creates_once_then_reads_the_entry(tmp_path: Path) -> None:
    cache, calls = CheckpointCache(tmp_path), []

    def create():
        calls.append(1)
        return {"w": torch.arange(3.0)}

    first, created = cache.load_or_create("state", {"a": 1}, create)
    again, created_again = cache.load_or_create("state", {"a": 1}, create)
    assert (created, created_again, len(calls)) == (True, False, 1)
    assert torch.equal(again["state_dict"]["w"], first["state_dict"]["w"])
    assert again["extra"]["time_create_s"] == first["extra"]["time_create_s"] >= 0
