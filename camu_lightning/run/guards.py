"""The checks that refuse a run before any work: one that would do nothing, never end, give a wrong result, or be
compared with a Retrain of another run. Each refusal is one line naming the setting and the fix."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from camu_lightning.methods import UnlearningMethod
from camu_lightning.utils.lightning_private import start_method

# What pairs a run with its Retrain, as results.json names each part (`identity_keys`), and how a user says it.
IDENTITY = {"data_key": "data", "network_key": "network", "forget_set_key": "split", "seed": "seed"}


def check_run(method: UnlearningMethod, trainer: L.Trainer) -> None:
    """Refuse a Trainer that would run no unlearning step or never end, and a device setup the method cannot use."""
    name, (fewest, most) = type(method).__name__, method.epoch_range
    if trainer.current_epoch > 0 or trainer.global_step > 0:
        raise ValueError(
            f"the Trainer has trained already (epoch {trainer.current_epoch}, step {trainer.global_step}) and would "
            f"run no {name} step: give the unlearning a new Trainer, not the one that trained the original"
        )
    if method.train_streams() and trainer.limit_train_batches == 0:
        raise ValueError(f"trainer.limit_train_batches is 0, so {name} would run no unlearning step: remove it")
    if trainer.max_steps == 0 or trainer.max_steps < -1:
        raise ValueError(f"trainer.max_steps must be -1 (no limit) or >= 1, got {trainer.max_steps}")
    endless = trainer.max_epochs in (None, -1) and trainer.max_steps == -1
    if endless or (trainer.max_epochs not in (None, -1) and not fewest <= trainer.max_epochs <= (most or math.inf)):
        allowed = f"{fewest}" if most == fewest else f"{fewest} or more" if most is None else f"{fewest}..{most}"
        raise ValueError(f"trainer.max_epochs must be {allowed} for {name}, got {trainer.max_epochs}")
    if trainer.num_devices * trainer.num_nodes == 1:
        return
    if not method.distributable:
        raise ValueError(
            f"{name} runs on one device only: set trainer.devices 1 "
            f"(got {trainer.num_devices} devices x {trainer.num_nodes} nodes)"
        )
    if start_method(trainer.strategy) != "popen":
        raise ValueError(
            "trainer.strategy must start each rank as a process of its own (ddp, ddp_find_unused_parameters_true), "
            "not spawn it: a spawned rank's clock and metrics never return to camu fit"
        )


def check_network(method: UnlearningMethod, datamodule: Any) -> None:
    """The network takes the data's inputs in float32 and returns one logit per class the data declares: checked
    with one forward of two test images in eval mode (no weight, statistic or random state changes) before any
    work, so a mismatch is one line, not an error deep in an attack or after an epoch."""
    network = method.network
    wrong = sorted({str(p.dtype).removeprefix("torch.") for p in network.parameters() if p.dtype != torch.float32})
    if wrong:
        raise ValueError(
            f"the network's parameters are {', '.join(wrong)}; the suite trains float32 networks: convert it with "
            "model.float() (trainer.precision sets mixed precision)"
        )
    device = next((p.device for p in network.parameters()), torch.device("cpu"))  # a model handed over on a GPU
    inputs = datamodule.eval_sets["test"].__getitems__([0, 1])["x"].to(device)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            output = network(inputs)
    finally:
        network.train(was_training)
    logits = output[0]  # the suite's networks return (logits, embedding); a user's model is wrapped so
    if isinstance(logits, tuple | list):
        raise ValueError(
            f"the model's forward returns a {type(logits).__name__} of {len(logits)}, not the logits: give "
            "nn.Sequential(model, camu_lightning.models.OutputAt(i)), i the logits' position in it"
        )
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model's forward must return logits of shape (batch, classes), got {shape}")
    if logits.shape[1] != datamodule.num_classes:
        raise ValueError(
            f"the model returns {logits.shape[1]} logits per image but the data holds {datamodule.num_classes} "
            f"classes: give it a head of {datamodule.num_classes} outputs (or data whose labels are 0.."
            f"{logits.shape[1] - 1})"
        )


def check_built(method: UnlearningMethod, has_recipe: bool) -> None:
    """A method built from a network class starts from nothing unless the run knows the original's recipe."""
    if not has_recipe and not method.given_model and method.starts_from_original:
        raise ValueError(
            f"{type(method).__name__} was built from a network class: give it the trained model "
            "(network=your_model), or the original's recipe (original=OriginalRecipe(...))"
        )


def check_retrain(retrain: dict[str, Any], identity: dict[str, Any]) -> None:
    """A Retrain result to pair with must be a finished Retrain of this run's data, network, split and seed; the
    refusal names which of them differ."""
    if retrain.get("method") != "Retrain" or retrain.get("status", "ok") != "ok":
        raise ValueError(
            f"retrain must be a finished Retrain run's results, got {retrain.get('method')} "
            f"with status {retrain.get('status', 'ok')}"
        )
    if retrain.get("split_key") == identity["split_key"]:
        return
    differ = [word for key, word in IDENTITY.items() if key in retrain and retrain[key] != identity[key]]
    if not differ:  # results written before the parts were recorded: only their combination can be compared
        differ = ["data, network, split or seed (its results name only their combination, split_key)"]
    raise ValueError(
        f"retrain is a Retrain of another {', '.join(differ)} than this run: pass the results of a Retrain "
        f"of the same data module, network, forget set and seed (split_key {identity['split_key']}, "
        f"got {retrain.get('split_key')})"
    )
