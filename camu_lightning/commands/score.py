"""`camu score`: the forget-quality study of metrics.md section 9 for any method's config.

`camu score --config configs/mnist_scrub.yaml --data.dataset mnist5k --models 32` fixes one forget set (the
config's) and one original, then trains, in this process and one after another, N Retrains (seeds 0..N-1) and N
runs of the method from that original (seeds 0..N-1: only the method's own randomness varies). Each model leaves a
small record in the cache: its float64 logit-scaled confidences on D_f, its acc_remain and acc_test. A record that
exists is never recomputed, so an interrupted study resumes where it stopped and a second method on the same split
trains no Retrain again (Retrain's weights are cached as well, shared with `camu fit`). F, the utility-adjusted
score, the per-example epsilons and their histogram go to the study's folder.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from camu_lightning.cache import CheckpointCache, check_cache_writable
from camu_lightning.keys import cache_key
from camu_lightning.metrics.accuracy import accuracy_counter
from camu_lightning.metrics.forget_quality import forget_quality, logit_scaled_confidence, utility_adjusted
from camu_lightning.run.configured import ConfiguredRun, configured_run
from camu_lightning.run.starting_point import StartingPoint, own_settings
from camu_lightning.run.unlearn import unlearn
from camu_lightning.utils.config_files import check_config_options
from camu_lightning.utils.files import atomic_write, write_json
from camu_lightning.utils.terminal import console, one_line_errors, print_error, set_up_terminal

RECORD_KIND = "forget_scores"
# Options given to the Retrains as well as to the method: the data, the original, the cache and the hardware.
SHARED_OPTIONS = ("--data.", "--original.", "--cache_dir", "--trainer.accelerator")
# Every model of a study: no logger, checkpoints, validation or per-run progress bar (the study shows its own).
QUIET_RUN = [
    *("--trainer.logger", "false", "--trainer.enable_checkpointing", "false"),
    *("--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0"),
]
# Data settings that reach no model's weights (paths, evaluation, workers) or that the pairing key holds already.
NOT_IN_MODEL = (
    *("dataset", "root", "download", "forget_fraction", "forget_classes", "forget_indices"),
    *("split_seed", "mia_attack_size", "eval_batch_size", "num_workers"),
)


def study_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camu score",
        description=(
            "The NeurIPS 2023 Machine Unlearning challenge's forget quality F (metrics.md section 9) of a method: "
            "N Retrains and N runs of the method from one original on one forget set, each example's confidences "
            "under both told apart by the best threshold rules. F = 1: no example tells the method from Retrain."
        ),
        epilog=(
            "Every other option is `camu fit`'s (see `camu fit --help`). --data.*, --original.*, --cache_dir and "
            "--trainer.accelerator apply to the Retrains too; the rest (--model.*, --trainer.*) to the method "
            "alone. The config's seed_everything picks the forget set; the models' seeds are 0..N-1 (N..2N-1 for "
            "the method's side when the method is Retrain itself, so F is then the score's ceiling at this N). "
            "Models run one after another on one device, without validation; each leaves a record in the cache, "
            "so a rerun resumes and a second method reuses the Retrains."
        ),
    )
    parser.add_argument("--config", required=True, help="the method's config, e.g. configs/mnist_scrub.yaml")
    parser.add_argument(
        "--models", type=int, default=32, help="N, models a side (default 32; >= 3; the challenge used 512)"
    )
    parser.add_argument(
        "--retrain_config",
        help="the Retrains' config (default: <prefix>_retrain.yaml beside --config, e.g. configs/mnist_retrain.yaml)",
    )
    parser.add_argument(
        "--out", help="folder of the study's results (default: lightning_logs/forget_quality/<method>-<dataset>-...)"
    )
    return parser


def split_options(options: list[str]) -> tuple[list[str], list[str]]:
    """(shared, method-only) `camu fit` options, each kept with its value."""
    shared: list[str] = []
    method: list[str] = []
    index = 0
    while index < len(options):
        option = options[index]
        takes_next = "=" not in option and index + 1 < len(options) and not options[index + 1].startswith("--")
        group = options[index : index + 1 + takes_next]
        (shared if option.startswith(SHARED_OPTIONS) else method).extend(group)
        index += len(group)
    return shared, method


def retrain_config_beside(config: Path) -> Path:
    """`<prefix>_retrain.yaml` beside the method's config for the longest prefix of its name that has one."""
    parts = config.stem.split("_")
    for end in range(len(parts) - 1, 0, -1):
        candidate = config.with_name(f"{'_'.join(parts[:end])}_retrain.yaml")
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no <prefix>_retrain.yaml beside {config}; set --retrain_config")


def starting_point(run: ConfiguredRun) -> StartingPoint:
    """The run's starting point, its keys computed (the cache keys of everything the run starts from)."""
    start = StartingPoint(run.original, run.settings.cache_dir, run.callback_settings()["network"])
    start.keys_of(run.method, run.datamodule)
    return start


def record_key(run: ConfiguredRun, trainer: L.Trainer) -> dict[str, Any]:
    """What determines a model of the study: the method's class, its unlearned key (pairing, recipe, epochs,
    precision), the original it starts from, and the data settings that shape its training streams."""
    hparams = run.datamodule.hparams
    start = starting_point(run)
    original = start.keys.original(start.recipe.training_settings(), start.recipe.precision)
    return {
        "method": f"{type(run.method).__module__}.{type(run.method).__qualname__}",
        "model": start.unlearned_key(trainer, run.method),
        "original": original if run.method.starts_from_original else None,
        "data": {key: value for key, value in own_settings(hparams).items() if key not in NOT_IN_MODEL},
    }


def train_and_score(run: ConfiguredRun, trainer: L.Trainer) -> dict[str, torch.Tensor]:
    """Unlearn (Retrain: from the cache where it is there), then one batched pass over D_r, D_f and the test set."""
    results = unlearn(run.method, run.datamodule, trainer, **run.callback_settings(), verbose=False)
    logits = trainer.predict(run.method, dataloaders=run.datamodule.test_dataloader())
    sets = run.datamodule.eval_sets
    logits = {name: torch.cat(logits[i]).double().cpu() for i, name in enumerate(("remain", "forget", "test"))}
    labels = {name: sets[name].labels[sets[name].rows] for name in logits}
    accuracy = {}
    for name in logits:
        counter = accuracy_counter(logits[name].shape[1])
        counter.update(logits[name].argmax(1), labels[name])
        accuracy[name] = 100.0 * counter.compute()
    confidence = logit_scaled_confidence(logits["forget"].numpy(), labels["forget"].numpy())
    return {
        "confidence": torch.from_numpy(confidence),
        "acc_remain": accuracy["remain"],
        "acc_test": accuracy["test"],
        "time_unlearn_s": torch.tensor(float(results["time_unlearn_s"]), dtype=torch.float64),
    }


def model_record(args: list[str], pairing: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(record, trained now) of one model: from the cache, or trained and scored now."""
    run = configured_run(args)
    trainer = run.trainer()
    if trainer.num_devices * trainer.num_nodes > 1:
        raise ValueError("camu score runs its models one after another on one device: set trainer.devices 1")
    own = starting_point(run).keys.pairing() | {"seed": None}
    if own != pairing:
        differ = ", ".join(key for key in own if own[key] != pairing[key])
        raise ValueError(f"the Retrain config differs from the method's in {differ}; set --retrain_config to match")
    cache = CheckpointCache(run.settings.cache_dir)
    entry, created = cache.load_or_create(RECORD_KIND, record_key(run, trainer), lambda: train_and_score(run, trainer))
    return entry["state_dict"], created


def fixed_forget_set(probe: ConfiguredRun, cache_dir: str) -> list[str]:
    """Options that hold every model to the probe's forget set: a random one (drawn from the split seed, which
    follows each model's seed) is written to a file; a class or a given list is the same for any seed already."""
    if probe.datamodule.hparams.forget_fraction is None:
        return []
    forget = probe.datamodule.forget_rows
    path = Path(cache_dir) / "forget_sets" / f"{cache_key({'forget': forget})}.json"
    if not path.exists():
        write_json(path, forget)
    return ["--data.forget_fraction", "null", "--data.forget_indices", str(path)]


def study(options: argparse.Namespace, fit_options: list[str]) -> dict[str, Any]:
    """Every model's record (cached or trained now), then F, the utility-adjusted score and the files."""
    shared, method_only = split_options(fit_options)
    check_config_options(["--config", options.config])  # a missing config named by its path, before any file
    retrain_config = options.retrain_config or str(retrain_config_beside(Path(options.config)))
    check_config_options(["--config", retrain_config])
    probe = configured_run(["--config", options.config, *shared, *method_only, *QUIET_RUN])
    check_cache_writable(probe.settings.cache_dir)
    method_name, num_models = type(probe.method).__name__, options.models
    fixed = fixed_forget_set(probe, probe.settings.cache_dir)
    pairing = starting_point(probe).keys.pairing() | {"seed": None}
    method_seeds = range(num_models, 2 * num_models) if method_name == "Retrain" else range(num_models)
    sides = {
        "retrain": (["--config", retrain_config, *shared], range(num_models)),
        "method": (["--config", options.config, *shared, *method_only], method_seeds),
    }
    records: dict[str, list[dict[str, Any]]] = {"retrain": [], "method": []}
    trained, started = 0, time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("models", total=2 * num_models)
        for side, (args, seeds) in sides.items():
            name = "Retrain" if side == "retrain" else method_name
            for seed in seeds:
                progress.update(task, description=f"{name} seed {seed}")
                record, created = model_record([*args, "--seed_everything", str(seed), *fixed, *QUIET_RUN], pairing)
                records[side].append(record)
                trained += created
                progress.advance(task)
    return summarise(records, options, probe, trained, time.perf_counter() - started)


def summarise(
    records: dict[str, list[dict[str, Any]]],
    options: argparse.Namespace,
    probe: ConfiguredRun,
    trained: int,
    took: float,
) -> dict[str, Any]:
    """F and the utility-adjusted score of the records; writes forget_quality.json, epsilons.npy and the histogram."""
    confidences = {side: np.stack([r["confidence"].numpy() for r in rows]) for side, rows in records.items()}
    means = {
        side: {key: float(np.mean([float(r[key]) for r in rows])) for key in ("acc_remain", "acc_test")}
        for side, rows in records.items()
    }
    quality, epsilons = forget_quality(confidences["retrain"], confidences["method"])
    method_name, dataset = type(probe.method).__name__, probe.datamodule.hparams.dataset
    identity = cache_key(
        {
            "method": record_key(probe, probe.trainer()),
            "pairing": starting_point(probe).keys.pairing(),
            "N": options.models,
        }
    )
    out = Path(
        options.out or Path("lightning_logs") / "forget_quality" / f"{method_name}-{Path(dataset).stem}-{identity[:8]}"
    )
    results = {
        "method": method_name,
        "dataset": dataset,
        "models": options.models,
        "num_forget": int(epsilons.size),
        "forget_quality": quality,
        "forget_quality_final": utility_adjusted(quality, means["method"], means["retrain"]),
        **{f"{key}_method": value for key, value in means["method"].items()},
        **{f"{key}_retrain": value for key, value in means["retrain"].items()},
        "epsilon_median": float(np.median(epsilons)),
        "epsilon_share_max": float(np.mean(epsilons >= 50.0)),
        "epsilons": [round(float(value), 4) for value in epsilons],  # so `camu report` can draw the histogram
        # Identical models on the method's side (a deterministic method): every epsilon is capped and F = 0 by the
        # score's design (spec README point 15), not by failure; said beside the score, never dodged with noise.
        "method_models_identical": bool(np.all(confidences["method"] == confidences["method"][:1])),
        "models_trained": trained,
        "time_study_s": took,
        "time_unlearn_s_method": float(np.mean([float(r["time_unlearn_s"]) for r in records["method"]])),
        "time_unlearn_s_retrain": float(np.mean([float(r["time_unlearn_s"]) for r in records["retrain"]])),
        "config": options.config,
        "split_key": cache_key(starting_point(probe).keys.pairing() | {"seed": None}),
    }
    atomic_write(out / "epsilons.npy", lambda temporary: save_array(temporary, epsilons))
    title = f"{method_name} vs Retrain on {Path(dataset).stem}: F = {quality:.3f}, N = {options.models}"
    from camu_lightning.bench.plots import epsilon_histogram  # matplotlib: the `bench` extra

    epsilon_histogram(epsilons, options.models, title, out / "epsilon_histogram.png")
    write_json(out / "forget_quality.json", results)
    return results | {"out": str(out)}


def save_array(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as handle:  # a handle: np.save would add ".npy" to the temporary's name
        np.save(handle, array)


def results_table(results: dict[str, Any]) -> Table:
    dataset = Path(results["dataset"]).stem
    table = Table(title=f"forget quality of {results['method']} on {dataset}, N = {results['models']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("forget_quality", "forget_quality_final", "epsilon_median", "epsilon_share_max"):
        table.add_row(key, f"{results[key]:.4f}")
    for key in ("acc_remain", "acc_test", "time_unlearn_s"):
        table.add_row(f"{key} method / Retrain", f"{results[f'{key}_method']:.2f} / {results[f'{key}_retrain']:.2f}")
    table.add_row("models trained now", f"{results['models_trained']} of {2 * results['models']}")
    table.add_row("study time (s)", f"{results['time_study_s']:.1f}")
    return table


def main(args: list[str]) -> None:
    """`camu score`: bad input ends with one line and exit status 2."""
    set_up_terminal()
    options, fit_options = study_parser().parse_known_args(args)
    if options.models < 3:
        print_error(f"--models must be >= 3 (E = ceil(ln(N - 1)) > 0), got {options.models}")
    for name in ("lightning.pytorch", "lightning.fabric", "camu_lightning.cache"):
        logging.getLogger(name).setLevel(logging.WARNING)  # one line per model is the progress bar's
    warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging")
    with one_line_errors():
        results = study(options, fit_options)
    console.print(results_table(results))
    if results["method_models_identical"]:
        console.print(
            "note: the method's N models are identical (a deterministic method): every example's epsilon is capped "
            "and F = 0 by the score's design, which asks for randomised unlearning",
            highlight=False,
        )
    console.print(f"results: {results['out']}/forget_quality.json, epsilons.npy, epsilon_histogram.png", soft_wrap=True)
