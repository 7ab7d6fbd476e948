"""A finished run in TensorBoard's HParams view: its settings beside its final numbers, so a grid's runs can be
sorted and filtered there (`tensorboard --logdir lightning_logs/bench`, the HPARAMS tab; each run's session is the
run `<run folder>/hparams`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger

from camu_lightning.gaps import ATTACK_KEYS
from camu_lightning.run.starting_point import own_settings

FINAL = ("acc_remain", "acc_forget", "acc_test", "acc_test_remain", "acc_test_forget", "mia", *ATTACK_KEYS,
         "avg_gap", "tow", "rte", "rte_with_prepare", "time_unlearn_s")  # fmt: skip


def run_settings(results: dict[str, Any], method_hparams: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    """What identifies the run: method, dataset, scenario, seed, the caller's labels (e.g. the grid's variant) and the
    method's own hyperparameters (`model/<name>`)."""
    classes = results["forget_classes"]
    scenario = f"class{'+'.join(map(str, classes))}" if classes else f"random {results['num_forget']}"
    own = {f"model/{name}": value for name, value in own_settings(method_hparams).items()}
    identity = {"method": results["method"], "dataset": results["dataset"], "scenario": scenario}
    return identity | {"seed": results["seed"], **labels, **own}


def log_to_hparams_view(logger: Any, results: dict[str, Any], method_hparams: dict[str, Any], labels: dict) -> None:
    """The run's settings and its final numbers (`final/<metric>`) as one HParams session, in the run's folder under
    `hparams/` (TensorBoard loggers only). A run of its own: TensorBoard keeps the first session a run's files hold,
    and Lightning's fit-start placeholder (`hp_metric`) is already in the run's folder."""
    if not isinstance(logger, TensorBoardLogger):
        return
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    final = {f"final/{key}": float(results[key]) for key in FINAL if key in results}
    final = {key: value for key, value in final.items() if math.isfinite(value)}  # RTE of a 0 s time is infinite
    settings = {name: value if isinstance(value, bool | int | float | str) else str(value)
                for name, value in run_settings(results, method_hparams, labels).items()}  # fmt: skip
    with SummaryWriter(log_dir=str(Path(logger.log_dir) / "hparams")) as writer:
        for summary in hparams(settings, final):
            writer.file_writer.add_summary(summary)
        for name, value in final.items():
            writer.add_scalar(name, value, 0)
