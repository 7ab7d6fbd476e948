"""`camu fit` through the real entry point on tiny generated data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from camu_lightning.cli import main
from camu_lightning.metrics import ATTACK_KEYS

REPO = Path(__file__).resolve().parents[1]
METRICS = ("acc_remain", "acc_forget", "acc_test", "mia")


def run_camu(tmp_path: Path, dataset: Path, *overrides: str, config: str = "configs/demo_camu.yaml") -> dict | None:
    """Run `camu fit` on a tiny dataset; returns results.json, or None when the run wrote none."""
    args = [
        "fit",
        "--config",
        str(REPO / config),
        "--data.dataset",
        str(dataset),
        "--data.eval_batch_size",
        "16",
        "--trainer.max_epochs",
        "2",
        "--original.epochs",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
        "--trainer.logger",
        "false",
        "--trainer.enable_checkpointing",
        "false",
        "--cache_dir",
        str(tmp_path / "cache"),
        *overrides,
    ]
    main(args)
    results = sorted((tmp_path / "runs").glob("**/results.json"), key=lambda path: path.stat().st_mtime)
    return json.loads(results[-1].read_text()) if results else None


def test_fit_writes_results_split_and_reuses_the_cached_original(tmp_path: Path, tiny_npz: Path, capsys) -> None:
    first = run_camu(tmp_path, tiny_npz)
    assert first["status"] == "ok" and first["method"] == "CaMU" and first["original_source"] == "trained"
    assert (first["num_forget"], first["num_remain"], first["num_sample"]) == (6, 54, 6)
    for key in METRICS:
        assert 0 <= first[key] <= 100 and 0 <= first[f"original_{key}"] <= 100
    assert first["time_unlearn_s"] > 0 and first["config"]["data"]["forget_fraction"] == 0.1
    assert "acc_test_forget" not in first
    split = json.loads((tmp_path / "runs" / "split.json").read_text())
    assert len(split["forget"]) == 6 and not set(split["forget"]) & set(split["remain"])
    assert "CaMU on" in capsys.readouterr().err
    (tmp_path / "runs" / "results.json").unlink()
    second = run_camu(tmp_path, tiny_npz)
    assert second["original_source"] == "cache"
    assert {key: second[key] for key in METRICS} == {key: first[key] for key in METRICS}
    third = run_camu(tmp_path, tiny_npz, "--seed_everything", "1")
    assert third["original_cache_key"] == first["original_cache_key"]  # one original serves every run seed
    assert json.loads((tmp_path / "runs" / "split.json").read_text())["forget"] != split["forget"]


def test_a_tune_trials_options_skip_the_original_and_the_stronger_attacks_and_change_no_result(tmp_path, tiny_npz):
    """`--trainer.limit_val_batches 0 --stronger_attacks false` (camu tune's trials) drop the original's evaluation,
    the per-epoch validation and the four stronger attacks, and the accuracies and the paper's MIA are the ones a
    full run gives: the unlearned model is bitwise the same (validation draws no randomness) and so are its rows."""
    run = ("--trainer.check_val_every_n_epoch", "1")  # NGrad's own setting: a validation after every epoch
    full = run_camu(tmp_path, tiny_npz, *run, config="configs/mnist_ngrad.yaml")
    (tmp_path / "runs" / "results.json").unlink()
    off = ("--trainer.limit_val_batches", "0", "--stronger_attacks", "false")
    trial = run_camu(tmp_path, tiny_npz, *run, *off, config="configs/mnist_ngrad.yaml")
    assert full["original_acc_test"] >= 0 and not any(key.startswith("original_acc") for key in trial)
    assert all(full[key] >= 0 for key in ATTACK_KEYS) and not any(key in trial for key in ATTACK_KEYS)
    tested = [key for key in full if key.startswith(("acc_", "mia")) and key not in ATTACK_KEYS]
    assert len(tested) >= 4 and {key: trial[key] for key in tested} == {key: full[key] for key in tested}


def test_the_originals_evaluation_is_cached_for_the_same_weights_rows_and_attacks(tmp_path, tiny_npz) -> None:
    """A second method on the same split reads the original's evaluation from the cache, and it equals a fresh
    evaluation; other attack settings or another seed (other attack rows) evaluate again."""
    ngrad, scrub = "configs/mnist_ngrad.yaml", "configs/mnist_scrub.yaml"  # the same data settings
    first = run_camu(tmp_path, tiny_npz, config=ngrad)
    second = run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", "1", config=scrub)
    assert first["original_evaluation_from_cache"] is False and second["original_evaluation_from_cache"] is True
    original = {key: value for key, value in first.items() if key.startswith(("original_acc", "original_mia"))}
    assert len(original) == 8 and {key: second[key] for key in original} == original
    for entry in (tmp_path / "cache" / "evaluation").glob("*.pt"):
        entry.unlink()
    fresh = run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", "1", config=scrub)
    assert fresh["original_evaluation_from_cache"] is False and {key: fresh[key] for key in original} == original
    for changed in (("--data.mia_attack_size", "4"), ("--seed_everything", "1")):
        assert run_camu(tmp_path, tiny_npz, *changed, config=ngrad)["original_evaluation_from_cache"] is False


@pytest.mark.parametrize("progress_bar", [True, False])
def test_the_trainer_has_the_configs_callbacks_and_a_rich_progress_bar_unless_off(tiny_npz, progress_bar) -> None:
    from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

    from camu_lightning.channels_last import ChannelsLast
    from tests.conftest import instantiated_cli

    args = ["--config", str(REPO / "configs/demo_camu.yaml"), "--data.dataset", str(tiny_npz)]
    args += [] if progress_bar else ["--trainer.enable_progress_bar", "false"]
    cli = instantiated_cli(*args)
    callbacks = cli.trainer.callbacks
    assert sum(isinstance(callback, ChannelsLast) for callback in callbacks) == 1
    assert [type(c) for c in callbacks if isinstance(c, ProgressBar)] == ([RichProgressBar] if progress_bar else [])


def test_class_removal_reports_the_test_slices(tmp_path: Path, tiny_npz: Path) -> None:
    results = run_camu(tmp_path, tiny_npz, "--data.forget_fraction", "null", "--data.forget_classes", "[0]")
    assert results["forget_classes"] == [0] and results["num_forget"] == 20
    assert {"acc_test_remain", "acc_test_forget", "original_acc_test_forget"} <= set(results)


def test_forget_indices_from_a_saved_split_reproduce_the_run(tmp_path: Path, tiny_npz: Path) -> None:
    first = run_camu(tmp_path, tiny_npz)
    saved = tmp_path / "split.json"
    saved.write_text((tmp_path / "runs" / "split.json").read_text())
    (tmp_path / "runs" / "results.json").unlink()
    again = run_camu(tmp_path, tiny_npz, "--data.forget_fraction", "null", "--data.forget_indices", str(saved))
    assert {key: again[key] for key in METRICS} == {key: first[key] for key in METRICS}


def test_bf16_mixed_precision_runs_on_cpu(tmp_path: Path, tiny_npz: Path) -> None:
    results = run_camu(tmp_path, tiny_npz, "--trainer.precision", "bf16-mixed")
    assert results["status"] == "ok" and results["config"]["trainer"]["precision"] == "bf16-mixed"


def expect_one_line_error(capsys, message: str) -> None:
    error = capsys.readouterr().err.strip().splitlines()
    assert error and message in error[-1], error[-3:]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("--data.dataset", "imagenet"), "unknown data.dataset 'imagenet'; choose from:"),
        (("--data.forget_fraction", "1.5"), "data.forget_fraction must be in (0, 1), got 1.5"),
        (("--data.forget_fraction", "0"), "data.forget_fraction must be in (0, 1), got 0"),
        (("--data.forget_fraction", "0.01"), "the forget set is empty"),
        (("--data.forget_fraction", "null", "--data.forget_classes", "[7]"), "data.forget_classes [7] out of range"),
        (("--data.forget_fraction", "null", "--data.forget_classes", "[0, 1, 2]"), "the remain set is empty"),
        (("--data.forget_classes", "[1]"), "set exactly one of data.forget_fraction, data.forget_classes"),
        (("--data.dataset", "mnist", "--data.root", "nowhere"), "dataset 'mnist' not found under data.root=nowhere"),
        (("--model.init_args.kl_lr", "-1"), "model.kl_lr must be > 0"),
        (("--original.epochs", "0"), "original.epochs must be > 0"),
        (("--trainer.max_epochs", "0"), "trainer.max_epochs must be 1 or more for CaMU, got 0"),
        (("--trainer.max_epochs", "-1"), "trainer.max_epochs must be 1 or more for CaMU, got -1"),
        (("--trainer.max_steps", "0"), "trainer.max_steps must be -1 (no limit) or >= 1, got 0"),
    ],
)
def test_bad_settings_exit_2_with_one_line_and_write_nothing(tmp_path, tiny_npz, capsys, overrides, message) -> None:
    dataset = tiny_npz if "--data.dataset" not in overrides else overrides[overrides.index("--data.dataset") + 1]
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, Path(dataset), *overrides)
    assert exit_info.value.code == 2
    expect_one_line_error(capsys, message)
    assert not list(tmp_path.glob("**/results.json")) and not list(tmp_path.glob("cache/**/*.pt"))


def test_mismatched_original_checkpoint_is_refused(tmp_path: Path, tiny_npz: Path, capsys) -> None:
    from camu_lightning.models import CNN

    checkpoint = tmp_path / "other.pt"
    torch.save(CNN(5, (1, 8, 8)).state_dict(), checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, tiny_npz, "--original.checkpoint", str(checkpoint))
    assert exit_info.value.code == 2
    expect_one_line_error(capsys, "fc2.1.weight has shape (5, 128), the network (3, 128)")
    assert not list(tmp_path.glob("**/results.json"))


def test_a_user_checkpoint_is_unlearned_instead_of_training_one(tmp_path: Path, tiny_npz: Path) -> None:
    from camu_lightning.models import CNN

    checkpoint = tmp_path / "mine.pt"
    torch.save(CNN(3, (1, 8, 8)).state_dict(), checkpoint)
    results = run_camu(tmp_path, tiny_npz, "--original.checkpoint", str(checkpoint))
    cached_models = [path for path in tmp_path.glob("cache/**/*.pt") if path.parent.name != "evaluation"]  # numbers
    assert results["original_source"] == str(checkpoint) and not cached_models


def test_corrupted_cache_entry_is_refused(tmp_path: Path, tiny_npz: Path, capsys) -> None:
    run_camu(tmp_path, tiny_npz)
    (entry,) = (tmp_path / "cache").glob("original/*.pt")
    entry.write_bytes(entry.read_bytes()[:100])
    (tmp_path / "runs" / "results.json").unlink()
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, tiny_npz)
    assert exit_info.value.code == 2
    expect_one_line_error(capsys, f"cached original checkpoint {entry} is unreadable")
    assert not list(tmp_path.glob("**/results.json"))


def test_console_script_help_explains_the_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "camu_lightning", "fit", "--help"], capture_output=True, text=True, cwd=REPO, check=True
    )
    for setting in ("--data.forget_fraction", "--data.forget_classes", "--original.checkpoint", "--cache_dir"):
        assert setting in result.stdout


def test_camu_help_and_camu_report_load_no_torch(tmp_path: Path) -> None:
    """`camu --help` and `camu report` (with a grid, whose cells it lists) start without torch or Lightning."""
    probe = (
        "import sys; from camu_lightning.main import main; main(sys.argv[1:]); "
        "loaded = [m for m in ('torch', 'lightning') if m in sys.modules]; assert not loaded, loaded"
    )
    for method in ("retrain", "camu"):  # a few committed rows: the report's whole path, quickly
        shutil.copytree(REPO / "results" / "mnist" / "random" / method, tmp_path / "rows" / "mnist" / "random" / method)
    report = ["report", "--results", str(tmp_path / "rows"), "--docs", str(tmp_path / "docs"),
              "--grid", str(REPO / "configs/bench/floor.yaml")]  # fmt: skip
    for args in (["--help"], report):
        subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=REPO, check=True)
    assert (tmp_path / "docs" / "reproduction.md").is_file()


def _npz(path: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 8, 8), dtype=np.uint8),
        "y_train": np.arange(30) % 3,
        "x_test": rng.integers(0, 256, (12, 8, 8), dtype=np.uint8),
        "y_test": np.arange(12) % 3,
    }
    np.savez(path, **(arrays | changes))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"y_train": (np.arange(30) % 3).astype(np.float64)},
            "y_train must hold integer class labels 0..C-1, got float64",
        ),
        ({"y_train": np.r_[np.arange(29) % 3, 99]}, "y_train holds label 99; labels must be 0..3 for the 4 classes"),
        ({"x_test": np.full((12, 8, 8), np.nan)}, "x_test holds NaN or infinite values"),
        ({"x_train": np.full((30, 8, 8), 0.5)}, "x_train must hold integer pixels 0..255, got float64"),
        (
            {"x_train": np.zeros((30, 3, 8, 8), np.uint8), "x_test": np.zeros((12, 3, 8, 8), np.uint8)},
            "looks channel-first",
        ),
        ({"x_train": np.zeros((0, 8, 8), np.uint8), "y_train": np.zeros(0, np.int64)}, "y_train is empty"),
        ({"x_test": np.zeros((0, 8, 8), np.uint8), "y_test": np.zeros(0, np.int64)}, "y_test is empty"),
    ],
    ids=["float-labels", "stray-label", "nan-images", "float-images", "channel-first", "empty-train", "empty-test"],
)
def test_a_bad_dataset_is_refused_with_one_line_naming_the_array(tmp_path, capsys, changes, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, _npz(tmp_path / "user.npz", **changes))
    assert exit_info.value.code == 2
    expect_one_line_error(capsys, message)
    assert not list(tmp_path.glob("**/results.json")) and not list(tmp_path.glob("cache/**/*.pt"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("--model", "camu_lightning.methods.Nope"), "model: camu_lightning.methods.Nope: module"),
        (("--model.init_args.bogus", "3"), "model: camu_lightning.methods.CaMU: Option 'bogus' is not accepted"),
        (("--trainer.max_epochs", "abc"), "trainer.max_epochs: expected int (given: abc)"),
    ],
    ids=["unknown-class-path", "unknown-key", "wrong-type"],
)
def test_parser_errors_are_one_line_with_a_pointer_to_help(tmp_path, tiny_npz, capsys, overrides, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, tiny_npz, *overrides)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert message in error and error.endswith("`camu fit --help` lists every setting")
    assert "usage:" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"fc1.weight": [1.0, 2.0]}, "'fc1.weight' is a list, not a tensor"),
        ({"network": torch.nn.Linear(2, 2)}, "holds objects other than tensors and plain values"),
    ],
    ids=["values-not-tensors", "pickled-module"],
)
def test_a_bad_user_checkpoint_is_one_line_without_cache_or_unsafe_advice(tmp_path, tiny_npz, capsys, content, message):
    checkpoint = tmp_path / "mine.pt"
    torch.save(content, checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, tiny_npz, "--original.checkpoint", str(checkpoint))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert message in error and error.endswith("torch.save(network.state_dict(), path)") and "Traceback" not in err
    assert "delete it" not in error and "weights_only" not in error


def test_a_method_that_works_once_refuses_more_epochs(tmp_path, tiny_npz, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", "3", config="configs/mnist_sisa.yaml")
    assert exit_info.value.code == 2
    expect_one_line_error(capsys, "trainer.max_epochs must be 1 for SISA, got 3")


def test_relearning_starts_from_the_tested_model_and_reports_each_epoch(tmp_path: Path, tiny_npz: Path) -> None:
    results = run_camu(tmp_path, tiny_npz, "--relearn_epochs", "2", "--trainer.max_epochs", "1")
    # Epoch 0 is the unlearned model: the relearning pass's own accuracy equals the test's torchmetrics value.
    assert results["relearn_acc_forget_0"] == pytest.approx(results["acc_forget"])
    assert results["relearn_acc_remain_0"] == pytest.approx(results["acc_remain"])
    for name in ("acc_forget", "acc_remain"):
        values = [results[f"relearn_{name}_{epoch}"] for epoch in range(3)]
        assert [results[f"relearn_delta_{name}_{epoch}"] for epoch in range(3)] == pytest.approx(
            [value - values[0] for value in values]
        )
    assert "relearn_acc_forget_3" not in results


def test_the_logged_hyperparameters_hold_no_data_rows(tmp_path: Path, tiny_npz: Path) -> None:
    run_camu(
        tmp_path, tiny_npz, "--trainer.logger", "true", "--trainer.max_epochs", "1", config="configs/mnist_sisa.yaml"
    )
    (hparams,) = (tmp_path / "runs").glob("**/hparams.yaml")
    logged = yaml.safe_load(hparams.read_text().replace("!!python/tuple", ""))
    assert "train_rows" not in logged and "forget_rows" not in logged and logged["num_shards"] > 0
