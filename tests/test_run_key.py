"""The grid's key of a run (`keys.run_key` over the settings `camu fit` parses): configs written differently that
resolve to the same run share it, what decides a number changes it; and the migration of rows from the old
file-text hash rewrites that key alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from camu_lightning.bench.grid import cells, read_grid, resolved_run
from camu_lightning.bench.migrate import file_text_hash, migrate
from camu_lightning.keys import run_key
from camu_lightning.utils.config_files import read_config

REPO = Path(__file__).resolve().parents[1]


def key_of(config: Path, *options: str) -> str:
    return run_key(resolved_run(["--config", str(config), *options]))


def test_configs_that_resolve_to_the_same_run_share_its_key(tmp_path: Path) -> None:
    configs = shutil.copytree(REPO / "configs", tmp_path / "configs")
    composed = configs / "mnist_ssd.yaml"
    # The same run written out in full: every group inline, a Trainer default spelled out, SSD's dead 0 batches.
    flat = read_config(composed)
    flat["trainer"] |= {"max_steps": -1, "limit_train_batches": 0}
    (configs / "flat.yaml").write_text(yaml.safe_dump(flat))
    assert key_of(configs / "flat.yaml") == key_of(composed)
    # Where the data, cache and logs live and what is printed decide no number.
    assert key_of(composed, "--data.root", "/elsewhere", "--cache_dir", "/tmp/c", "--trainer.enable_progress_bar",
                  "false", "--trainer.default_root_dir", "/tmp/logs") == key_of(composed)  # fmt: skip
    # A setting, a seed or a group's file that decides a number changes the key.
    assert key_of(composed, "--model.init_args.dampening_constant", "2.0") != key_of(composed)
    assert key_of(composed, "--seed_everything", "1") != key_of(composed)
    (configs / "data" / "mnist.yaml").write_text(
        (configs / "data" / "mnist.yaml").read_text() + "mia_attack_size: 10\n"
    )
    assert key_of(composed) != key_of(configs / "flat.yaml")


def test_a_nested_class_enters_the_key_with_its_defaults() -> None:
    def key(network: dict) -> str:
        return run_key({"model": {"class_path": "camu_lightning.methods.CaMU", "init_args": {"network": network}}})

    bare = {"class_path": "torchvision.models.resnet18"}
    spelled = bare | {"init_args": {"weights": None, "progress": True}}  # resnet18's own defaults
    assert key(bare) == key(spelled)
    assert key(bare) != key(bare | {"init_args": {"progress": False}})


def test_migration_moves_a_current_row_to_the_run_key_and_leaves_a_stale_one(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"datasets": ["mnist"], "scenarios": ["random"], "methods": ["ngrad", "ssd"],
                                    "seeds": [1], "root": "../shared/data"}))  # fmt: skip
    ngrad, ssd = cells(read_grid(grid), REPO / "configs")
    results = tmp_path / "results"
    rows = {}
    for cell, stored in ((ngrad, file_text_hash(ngrad)), (ssd, "0123456789abcdef0123")):
        rows[cell] = {"row_version": 1, "dataset": "mnist", "scenario": "random", "method_key": cell.method,
                      "seed": 1, "config_hash": stored, "metrics": {"avg_gap": 0.5, "status": "ok"}}  # fmt: skip
        (results / cell.row).parent.mkdir(parents=True)
        (results / cell.row).write_text(json.dumps(rows[cell], indent=2) + "\n")
    moved, current, left = migrate([grid], results, REPO / "configs")
    assert (moved, current, left) == (1, 0, [results / ssd.row])
    assert json.loads((results / ngrad.row).read_text()) == rows[ngrad] | {"config_hash": ngrad.config_hash}
    assert json.loads((results / ssd.row).read_text()) == rows[ssd]  # stale under the old rule: untouched
    assert migrate([grid], results, REPO / "configs") == (0, 1, [results / ssd.row])  # a second run moves nothing
