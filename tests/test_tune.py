"""`camu tune` end to end on tiny data: the best trial becomes a config that runs alone and reproduces its objective,
a rerun resumes the stored study, and a cap nothing meets is a one-line error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
import pytest
import yaml

from camu_lightning.bench.grid import config_of, method_of
from camu_lightning.cli import main
from camu_lightning.commands import tune
from camu_lightning.utils.config_files import read_config
from tests.test_cli import REPO, run_camu


def run_tune(tmp_path: Path, dataset: Path, *extra: str) -> None:
    main(
        [
            "tune",
            *("--config", str(REPO / "configs" / "mnist_finetune.yaml"), "--out", str(tmp_path / "tuned.yaml")),
            *("--data.dataset", str(dataset), "--data.eval_batch_size", "16", "--original.epochs", "2"),
            *("--cache_dir", str(tmp_path / "cache")),
            *extra,
        ]
    )


def stored_trials(tmp_path: Path, dataset: Path) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{tmp_path / 'cache' / 'tune.sqlite3'}"
    return optuna.load_study(study_name=f"{dataset.stem}_random_finetune", storage=storage).trials


def test_the_best_trial_becomes_a_config_that_reproduces_it_and_a_rerun_resumes(tmp_path, tiny_npz, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_tune(tmp_path, tiny_npz, "--trials", "3")
    trials = stored_trials(tmp_path, tiny_npz)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 3 and complete
    # The config's own settings (mnist_finetune.yaml: lr 5e-4, 10 epochs) are the first trial, and only once.
    own = {"model.init_args.lr": 5.0e-4, "trainer.max_epochs": 10}
    assert trials[0].params == own and [t.params for t in trials].count(own) == 1
    best = min(complete, key=lambda t: t.value)
    text = (tmp_path / "tuned.yaml").read_text()
    assert text.startswith("# Tuned Finetune") and f"avg_gap to Retrain {best.value:.3f}" in text
    assert f"# The config's own settings were trial 0: avg_gap {trials[0].value:.3f}." in text
    assert best.value <= trials[0].value
    assert "s on cpu, where every trial ran). The search saw seed 0 only" in text  # the cap's device is named
    assert "tune" not in yaml.safe_load(text)
    tuned = read_config(tmp_path / "tuned.yaml")  # groups the search left as they were stay file references
    assert tuned["model"]["init_args"]["lr"] == best.params["model.init_args.lr"]
    assert tuned["trainer"]["max_epochs"] == best.params["trainer.max_epochs"]
    # The tuned config alone, on the tuning seed, gives the best trial's objective again.
    retrain = run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", "20", config="configs/mnist_retrain.yaml")
    assert retrain["unlearned_from_cache"] is True
    epochs = str(tuned["trainer"]["max_epochs"])  # run_camu's own default is 2
    rerun = run_camu(tmp_path, tiny_npz, "--trainer.max_epochs", epochs, config=str(tmp_path / "tuned.yaml"))
    assert rerun["avg_gap"] == pytest.approx(best.value, abs=1e-9)
    run_tune(tmp_path, tiny_npz, "--trials", "4")
    resumed = stored_trials(tmp_path, tiny_npz)
    assert len(resumed) == 4 and resumed[3].params not in [t.params for t in trials]  # drawn on, not replayed
    assert [t.params for t in resumed].count(own) == 1  # not enqueued again on resuming


def test_a_trial_whose_process_died_runs_again_with_its_settings_when_the_study_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(tune, "HEARTBEAT_S", 1)
    monkeypatch.setattr(tune, "STALE_AFTER_S", 1)
    own = {"x": 0.25}  # the config's own settings, enqueued as search() does
    study = tune.open_study(tmp_path, "s")
    study.enqueue_trial(own, skip_if_exists=True)
    died = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study._storage.record_heartbeat(died._trial_id)  # its last heartbeat: then the process is killed
    time.sleep(2.5)
    resumed = tune.open_study(tmp_path, "s")
    resumed.enqueue_trial(own, skip_if_exists=True)  # skipped: the dead trial holds these settings
    drawn = []
    resumed.optimize(lambda trial: drawn.append(trial.suggest_float("x", 0, 1)) or 0.0, n_trials=1)
    assert drawn == [0.25]
    assert [t.state for t in resumed.trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    assert tune.own_trial_line(resumed, own) == "The config's own settings were trial 1: avg_gap 0.000."


def test_a_cap_no_trial_meets_prunes_them_all_and_says_so(tmp_path, tiny_npz, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        run_tune(tmp_path, tiny_npz, "--trials", "2", "--time_cap_s", "0")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "error: every trial of tiny_random_finetune was pruned" in err
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in stored_trials(tmp_path, tiny_npz))
    assert not (tmp_path / "tuned.yaml").exists()


def test_a_config_without_ranges_is_refused(tmp_path, tiny_npz, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["tune", "--config", str(REPO / "configs" / "mnist_retrain.yaml"), "--data.dataset", str(tiny_npz)])
    assert stop.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("has no `tune:` block of ranges to search (setting: {low, high[, log]})")
    )


def test_help_names_every_option(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--config",
        "--scenario",
        "--trials",
        "--time_cap_s",
        "--retrain_config",
        "--out",
        "camu fit --help",
    ):
        assert option in text
    json.dumps(text)


@pytest.mark.parametrize("stem", ["mnist_ssd", "mnist_camu_class", "mnist_camu_remove_class", "mnist_boundary_shrink"])
def test_a_tuned_config_lands_where_the_grid_looks_for_it(tmp_path, stem) -> None:
    (tmp_path / "tuned").mkdir()
    method = method_of(Path(f"configs/{stem}.yaml"), "mnist")
    assert "_class" not in method and stem.startswith(f"mnist_{method}")
    (tmp_path / "tuned" / f"mnist_class0_{method}.yaml").write_text("{}")  # the name `camu tune` writes
    config, _ = config_of(tmp_path, "mnist", "class", method, "tuned")
    assert config == tmp_path / "tuned" / f"mnist_class0_{method}.yaml"
