"""`camu tune`: an Optuna search of one method's settings on one dataset and scenario.

`camu tune --config configs/mnist_ngrad.yaml --scenario class --trials 20` searches the ranges of the config's
`tune:` block (dotted setting -> {low, high[, log]} or {choices}) with Optuna's TPE sampler. Every trial is a real
`camu fit` on seed 0 in this process, without validation (the objective reads the test alone, and validating changes
no weight) or the stronger attacks (the objective reads accuracies and the paper's MIA); its objective is `avg_gap`
to the Retrain of the same split and seed (run first, from the cache when it is there). A trial whose unlearning
takes longer than the cap (default: that Retrain's time) is pruned, so a tuned method cannot become a retrain; so is
one that diverges. The study lives in Optuna's SQLite storage in the cache
folder, so an interrupted search resumes, the interrupted trial first. The config's own values of the searched
settings are one of the trials (the first of a new study), so the result is never worse than the default on seed 0.
The best trial becomes `configs/tuned/<dataset>_<random|class0>_<method>.yaml`: the method config's file references
and the searched values, a config that runs alone;
report it on seeds other than 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from camu_lightning.bench.grid import TUNED_CLASS, method_of
from camu_lightning.cache import check_cache_writable
from camu_lightning.commands.score import retrain_config_beside, split_options
from camu_lightning.methods import DivergenceError
from camu_lightning.run.configured import configured_run
from camu_lightning.run.run_folder import claim_run_folder, released_on_error
from camu_lightning.run.unlearn import unlearn
from camu_lightning.utils.config_files import check_config_options, config_with, read_config
from camu_lightning.utils.files import atomic_write
from camu_lightning.utils.terminal import console, one_line_errors, print_error, set_up_terminal

SCENARIOS = {
    "random": [],  # the config's own random removal (10 %)
    "class": ["--data.forget_fraction", "null", "--data.forget_classes", f"[{TUNED_CLASS}]"],
}
TUNING_SEED = 0
HEARTBEAT_S = 60  # a running trial's heartbeat
STALE_AFTER_S = 300  # a running trial silent this long was interrupted (margin for a busy machine)


def tune_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camu tune",
        description=(
            "Search a method's settings with Optuna (TPE) to minimise avg_gap to Retrain on seed 0, within the "
            "ranges of its config's `tune:` block; write the best as a complete config."
        ),
        epilog=(
            "Every other option is `camu fit`'s (see `camu fit --help`): --data.*, --original.*, --cache_dir and "
            "--trainer.accelerator apply to the Retrain as well. The study is stored in <cache_dir>/tune.sqlite3 "
            "under <dataset>_<scenario>_<method>: rerunning resumes it and adds trials up to --trials. The "
            "config's own values of the searched settings run as one of the trials (the first of a new study)."
        ),
    )
    parser.add_argument("--config", required=True, help="the method's config, with a `tune:` block of ranges")
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), default="random", help="random 10 %% (default) or class 0"
    )
    parser.add_argument("--trials", type=int, default=20, help="trials the study should hold in all (default 20; >= 1)")
    parser.add_argument(
        "--time_cap_s", type=float, help="prune trials unlearning for longer (default: the Retrain's time)"
    )
    parser.add_argument("--retrain_config", help="the Retrain's config (default: <prefix>_retrain.yaml beside it)")
    parser.add_argument(
        "--out", help="the tuned config (default: configs/tuned/<dataset>_<random|class0>_<method>.yaml)"
    )
    return parser


def fit(args: list[str], retrain: dict[str, Any] | None = None) -> dict[str, Any]:
    """One `camu fit` in this process, paired with `retrain`'s results where given, in a `version_N/` folder of its
    own; its results, with the device it ran on under "device"."""
    run = configured_run(args)
    trainer = run.trainer()
    claim_run_folder(trainer)
    with released_on_error(trainer):
        check_cache_writable(run.settings.cache_dir)
    folder = trainer.log_dir or trainer.default_root_dir
    settings = run.callback_settings() | {"retrain": retrain, "results_dir": folder, "verbose": False}
    results = unlearn(run.method, run.datamodule, trainer, **settings)
    device = trainer.strategy.root_device
    return results | {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type}


def search_space(config: Path) -> dict[str, dict[str, Any]]:
    """The config's `tune:` block, checked: each entry {low, high[, log]} or {choices}."""
    space = read_config(config).get("tune")
    if not space:
        raise ValueError(f"{config} has no `tune:` block of ranges to search (setting: {{low, high[, log]}})")
    for name, spec in space.items():
        if not (isinstance(spec, dict) and ({"low", "high"} <= spec.keys() or "choices" in spec)):
            raise ValueError(f"tune.{name} must be {{low, high[, log]}} or {{choices: [...]}}, got {spec}")
        if "low" in spec and not spec["low"] < spec["high"]:
            raise ValueError(f"tune.{name} needs low < high, got {spec['low']}, {spec['high']}")
    return space


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"], log=bool(spec.get("log")))
        else:
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return values


def own_settings(settings: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The config's own values of the searched settings, or None where one is unset or outside its range."""
    values = {}
    for name, spec in space.items():
        value: Any = settings
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        if "choices" in spec:
            inside = value in spec["choices"]
        else:
            integer = isinstance(spec["low"], int) and isinstance(spec["high"], int)
            number = isinstance(value, int if integer else int | float) and not isinstance(value, bool)
            inside = number and spec["low"] <= value <= spec["high"]
        if not inside:
            return None
        values[name] = value
    return values


def objective(method_args: list[str], space: dict[str, dict[str, Any]], time_cap: float, retrain: dict[str, Any]):
    def run_trial(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        try:
            trial_args = [*method_args, *(f"--{name}={json.dumps(value)}" for name, value in values.items())]
            results = fit(trial_args, retrain)
        except DivergenceError as error:
            trial.set_user_attr("pruned_because", f"pruned: {error}")
            raise optuna.TrialPruned() from error
        trial.set_user_attr("time_unlearn_s", results["time_unlearn_s"])
        if results["time_unlearn_s"] > time_cap:
            trial.set_user_attr(
                "pruned_because", f"unlearning took {results['time_unlearn_s']:.1f} s > {time_cap:.1f} s"
            )
            raise optuna.TrialPruned()
        return float(results["avg_gap"])

    return run_trial


def tuned_config(config: Path, out: Path, scenario: str, values: dict[str, Any], header: list[str]) -> str:
    """The method's config with the searched values and the scenario's forget set, as written at `out`: its file
    references where the search left a group alone (`config_with`)."""
    if scenario == "class":
        values = values | {"data.forget_fraction": None, "data.forget_classes": [TUNED_CLASS]}
    return config_with(config, out, values, header)


def own_trial_line(study: optuna.Study, own: dict[str, Any] | None) -> str:
    """The header's line on the trial of the config's own settings."""
    if own is None:
        return "The config's own settings are unset or outside the ranges, so no trial ran them."
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # a FAIL was interrupted
    ran = [t for t in study.trials if t.params == own and t.state in finished]
    if not ran:
        return "The config's own settings have not run yet (a study begun before they were enqueued): add a trial."
    trial = ran[0]
    outcome = f"avg_gap {trial.value:.3f}" if trial.value is not None else trial.user_attrs.get("pruned_because", "")
    return f"The config's own settings were trial {trial.number}: {outcome or trial.state.name.lower()}."


def open_study(storage_dir: Path, name: str) -> optuna.Study:
    """The stored study `name` (created when new), whose interrupted trials run again when it resumes.

    A running trial records a heartbeat every HEARTBEAT_S; one silent for STALE_AFTER_S (its process was killed)
    is marked failed when a trial next starts, and its settings are queued to run once more. Without this, a
    search stopped mid-trial kept that trial RUNNING for ever, and the config's own settings, if they were that
    trial, never ran: their enqueue skips settings that any stored trial holds.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{storage_dir.resolve() / 'tune.sqlite3'}",
            heartbeat_interval=HEARTBEAT_S,
            grace_period=STALE_AFTER_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    return optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)


def search(options: argparse.Namespace, fit_options: list[str]) -> Path:
    config = Path(options.config)
    check_config_options(["--config", str(config)])
    space = search_space(config)
    shared, method_only = split_options(fit_options)
    retrain_config = options.retrain_config or str(retrain_config_beside(config))
    settings = read_config(config)
    method_name = str(settings["model"]["class_path"]).rsplit(".", 1)[-1]
    config_dataset = str(settings["data"]["dataset"])
    method = method_of(config, config_dataset)  # the grid's name, e.g. boundary_shrink; camu for mnist_camu_class
    dataset = next((v for k, v in zip(shared, shared[1:], strict=False) if k == "--data.dataset"), config_dataset)
    label = "random" if options.scenario == "random" else "class0"
    name = f"{Path(dataset).stem}_{label}_{method}"
    cache_dir = next((v for k, v in zip(shared, shared[1:], strict=False) if k == "--cache_dir"), None)
    root = Path("lightning_logs") / "tune" / name
    run = [*SCENARIOS[options.scenario], "--seed_everything", str(TUNING_SEED), "--trainer.default_root_dir", str(root)]
    # No validation in a trial: the objective reads the test alone, and validating the original (66 of 148 s in a
    # profiled Boundary Expanding trial) and every epoch changes no weight (test_cli checks it).
    # Nor the stronger attacks, which the objective does not read (the SVC alone: about half of a trial's test).
    quiet = [
        *("--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false"),
        *("--trainer.limit_val_batches", "0", "--stronger_attacks", "false"),
    ]
    console.print(f"tune {name}: Retrain of the split (seed {TUNING_SEED}) first", highlight=False)
    retrain = fit(["--config", retrain_config, *shared, *run, *quiet])
    time_cap = options.time_cap_s if options.time_cap_s is not None else retrain["time_unlearn_s"]
    storage_dir = Path(cache_dir or settings.get("cache_dir", "camu_cache"))
    storage_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(storage_dir, name)
    # Seeded by the trials already stored: a resumed study draws on, where the bare seed would replay its first
    # trials' settings (the same search from the same history, so still reproducible).
    study.sampler = optuna.samplers.TPESampler(seed=TUNING_SEED + len(study.trials))
    # The config's own settings are a trial too (the next one, once per study): the search then never ends worse
    # than the default on the tuning seed, which TPE alone does not promise (NGrad class 0 on MNIST: 20 trials,
    # best 22.5, none near the default).
    if (own := own_settings(settings, space)) is not None:
        study.enqueue_trial(own, skip_if_exists=True)
    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    method_args = ["--config", str(config), *shared, *method_only, *run, *quiet]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"tune {name}", total=options.trials, completed=len(done))

        def report(study: optuna.Study, trial: optuna.FrozenTrial) -> None:
            progress.advance(task)
            outcome = (
                f"avg_gap {trial.value:.3f}" if trial.value is not None else trial.user_attrs.get("pruned_because")
            )
            console.print(f"trial {trial.number}: {outcome} with {trial.params}", highlight=False)

        remaining = max(0, options.trials - len(done))
        study.optimize(objective(method_args, space, time_cap, retrain), n_trials=remaining, callbacks=[report])
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ValueError(f"every trial of {name} was pruned (unlearning longer than {time_cap:.1f} s, or diverged)")
    best = study.best_trial
    header = [
        f"Tuned {method_name}, {dataset} {options.scenario} removal: camu tune --config {config} "
        f"--scenario {options.scenario} --trials {options.trials}",
        f"Optuna TPE (seed {TUNING_SEED}), {len(complete)} complete and {len(study.trials) - len(complete)} other "
        f"trials; best: trial {best.number}, avg_gap to Retrain {best.value:.3f} on seed {TUNING_SEED}.",
        own_trial_line(study, own),
        f"Unlearning time capped at {time_cap:.1f} s (the Retrain's: {retrain['time_unlearn_s']:.1f} s on "
        f"{retrain['device']}, where every trial ran). The search saw seed {TUNING_SEED} only: report this config "
        "on other seeds.",
    ]
    out = Path(options.out or Path("configs") / "tuned" / f"{name}.yaml")
    text = tuned_config(config, out, options.scenario, best.params, header)
    atomic_write(out, lambda temporary: temporary.write_text(text))
    return out


def main(args: list[str]) -> None:
    """`camu tune`: bad input ends with one line and exit status 2."""
    set_up_terminal()
    options, fit_options = tune_parser().parse_known_args(args)
    if options.trials < 1:
        print_error(f"--trials must be >= 1, got {options.trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with one_line_errors():
        out = search(options, fit_options)
    console.print(f"tuned config: {out}", soft_wrap=True)
