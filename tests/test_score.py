"""`camu score` end to end on tiny data: the do-nothing control scores F = 0, a study resumes from its records, a
second study reuses the Retrains, a record agrees with `camu fit`'s own evaluation, and bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from camu_lightning.cli import main
from camu_lightning.commands.score import split_options
from camu_lightning.metrics.forget_quality import forget_quality
from camu_lightning.utils.config_files import read_config
from tests.test_cli import REPO, run_camu

NUM_FORGET = 6  # 10 % of the tiny data set's 60 training images


def run_score(tmp_path: Path, dataset: Path, config: str, *extra: str, out: str = "study") -> dict:
    main(
        [
            "score",
            *("--config", str(REPO / config), "--models", "3", "--out", str(tmp_path / out)),
            *("--data.dataset", str(dataset), "--data.eval_batch_size", "16", "--original.epochs", "2"),
            *("--cache_dir", str(tmp_path / "cache")),
            *extra,
        ]
    )
    return json.loads((tmp_path / out / "forget_quality.json").read_text())


def records(tmp_path: Path) -> list[dict]:
    files = sorted((tmp_path / "cache" / "forget_scores").glob("*.pt"))
    return [torch.load(path, weights_only=True) for path in files]


def test_doing_nothing_scores_zero_and_a_rerun_trains_nothing(tmp_path: Path, tiny_npz: Path, monkeypatch) -> None:
    control = ("--model.init_args.lr", "0", "--trainer.max_epochs", "1")
    monkeypatch.chdir(tmp_path)  # the default root of a run's folders
    first = run_score(tmp_path, tiny_npz, "configs/mnist_finetune.yaml", *control)
    assert not (tmp_path / "lightning_logs").exists()  # a study writes only its --out folder, no empty version_N
    # lr 0 leaves every run equal to the original: a constant side, epsilon 50 on every example, F = 0 (section 9).
    epsilons = np.load(tmp_path / "study" / "epsilons.npy")
    assert epsilons.shape == (NUM_FORGET,) and np.all(epsilons == 50.0) and first["epsilons"] == epsilons.tolist()
    assert first["forget_quality"] == 0.0 and first["forget_quality_final"] == 0.0
    assert first["models_trained"] == 6 and first["num_forget"] == NUM_FORGET and first["method_models_identical"]
    assert (tmp_path / "study" / "epsilon_histogram.png").read_bytes()[:4] == b"\x89PNG"
    stored = records(tmp_path)
    assert len(stored) == 6 and all(r["state_dict"]["confidence"].dtype == torch.float64 for r in stored)
    method_side = [r["state_dict"]["confidence"] for r in stored if r["settings"]["original"] is not None]
    assert len(method_side) == 3 and all(torch.equal(c, method_side[0]) for c in method_side)
    again = run_score(tmp_path, tiny_npz, "configs/mnist_finetune.yaml", *control)
    assert again["models_trained"] == 0
    same = [key for key in first if "time" not in key and key != "models_trained"]
    assert {key: again[key] for key in same} == {key: first[key] for key in same}


def test_a_second_study_reuses_the_retrains_and_records_match_camu_fit(tmp_path: Path, tiny_npz: Path) -> None:
    finetune = run_score(tmp_path, tiny_npz, "configs/mnist_finetune.yaml", "--trainer.max_epochs", "1")
    assert 0.0 <= finetune["forget_quality"] <= 1.0 and finetune["models_trained"] == 6
    assert not finetune["method_models_identical"]
    # Retrain as the method: its side is seeds 3..5, the Retrains (seeds 0..2) come from the first study's records.
    ceiling = run_score(tmp_path, tiny_npz, "configs/mnist_retrain.yaml", out="ceiling")
    assert ceiling["models_trained"] == 3 and ceiling["acc_test_retrain"] == finetune["acc_test_retrain"]
    retrains = [r for r in records(tmp_path) if r["settings"]["original"] is None]
    by_seed = {r["settings"]["model"]["split"]["seed"]: r["state_dict"] for r in retrains}
    assert sorted(by_seed) == [0, 1, 2, 3, 4, 5]
    sides = [np.stack([by_seed[s]["confidence"].numpy() for s in seeds]) for seeds in ((0, 1, 2), (3, 4, 5))]
    assert ceiling["forget_quality"] == forget_quality(*sides)[0]
    # `camu fit` of Retrain seed 1 on the study's forget set takes the study's cached model; its torchmetrics
    # evaluation gives the record's accuracies.
    (forget_file,) = (tmp_path / "cache" / "forget_sets").glob("*.json")
    fit = run_camu(
        tmp_path,
        tiny_npz,
        *("--seed_everything", "1", "--trainer.max_epochs", "20"),
        *("--data.forget_fraction", "null", "--data.forget_indices", str(forget_file)),
        config="configs/mnist_retrain.yaml",
    )
    assert fit["unlearned_from_cache"] is True
    assert fit["acc_test"] == pytest.approx(float(by_seed[1]["acc_test"]), abs=1e-4)
    assert fit["acc_remain"] == pytest.approx(float(by_seed[1]["acc_remain"]), abs=1e-4)


def test_bad_input_is_one_line(tmp_path: Path, tiny_npz: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        run_score(tmp_path, tiny_npz, "configs/mnist_finetune.yaml", "--models", "2")
    assert stop.value.code == 2 and "--models must be >= 3" in capsys.readouterr().err
    other_network = read_config(REPO / "configs" / "mnist_retrain.yaml")
    other_network["model"]["init_args"]["network"] = {
        "class_path": "camu_lightning.models.ResNet18",
        "init_args": {"stem": "cifar32"},
    }
    retrain_config = tmp_path / "other_retrain.yaml"
    retrain_config.write_text(yaml.safe_dump(other_network))
    with pytest.raises(SystemExit) as stop:
        run_score(tmp_path, tiny_npz, "configs/mnist_finetune.yaml", "--retrain_config", str(retrain_config))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert err == "error: the Retrain config differs from the method's in network; set --retrain_config to match"


def test_help_explains_every_option(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    for option in ("--config", "--models", "--retrain_config", "--out", "camu fit --help", "seeds are 0..N-1"):
        assert option in text.replace("\n", " ").replace("  ", " ")


def test_options_go_to_the_retrains_only_when_they_shape_data_original_cache_or_hardware() -> None:
    options = ["--data.dataset", "x.npz", "--model.init_args.lr=0", "--trainer.max_epochs", "1", "--cache_dir", "c"]
    options += ["--trainer.accelerator", "cpu", "--original.epochs", "2", "--model.init_args.flag"]
    shared, method = split_options(options)
    assert shared == ["--data.dataset", "x.npz", "--cache_dir", "c", "--trainer.accelerator", "cpu"] + [
        "--original.epochs",
        "2",
    ]
    assert method == ["--model.init_args.lr=0", "--trainer.max_epochs", "1", "--model.init_args.flag"]
