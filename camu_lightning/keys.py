"""Every key the suite computes, in one place and without torch: the cache's entries (`cache_key` of the settings
`RunKeys` lists), the pairing of a run with its Retrain, and the grid's key of a run (`run_key`).

A key hashes the sorted-key JSON of exactly the settings that decide a result: never paths, workers or logging.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from dataclasses import dataclass
from typing import Any

from camu_lightning import __version__


def cache_key(settings: dict[str, Any]) -> str:
    """A short, stable hash of the settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class RunKeys:
    """The settings behind each cache entry of one run, and the key that pairs runs on the same split.

    Args:
        dataset: the dataset's name, or a user file's content hash.
        pipeline: the input pipeline.
        network: the network's class path and every init arg, the data's num_classes and input_shape included.
        split: a hash of the forget set.
        seed: the run seed.
    """

    dataset: str
    pipeline: str
    network: dict[str, Any]
    split: str
    seed: int

    @classmethod
    def of(cls, datamodule: Any, network: dict[str, Any], seed: int) -> RunKeys:
        """The keys of a run on this data module (an UnlearningDataModule) with this network config."""
        shape = {"num_classes": datamodule.num_classes, "input_shape": list(datamodule.input_shape)}
        network = network | {"init_args": network.get("init_args", {}) | shape}
        identity = (datamodule.dataset_identity(), datamodule.pipeline_identity(), datamodule.split_identity())
        return cls(identity[0], identity[1], network, identity[2], seed)

    def original(self, recipe: dict[str, Any], precision: str) -> dict[str, Any]:
        """What determines the original's weights: data, network, recipe (its seed included), precision and the
        package's major version; never the run seed or the split."""
        return {
            "dataset": self.dataset,
            "pipeline": self.pipeline,
            "network": self.network,
            "recipe": recipe,
            "precision": precision,
            "package_major": __version__.split(".")[0],
        }

    def pairing(self) -> dict[str, Any]:
        """Pairs runs on the same data, network, forget set and run seed (a method with its Retrain)."""
        return {
            "dataset": self.dataset,
            "pipeline": self.pipeline,
            "network": self.network,
            "split": self.split,
            "seed": self.seed,
        }

    def unlearned(
        self, recipe: dict[str, Any], epochs: int, precision: str, channels_last: bool, device: str
    ) -> dict[str, Any]:
        """What determines an unlearned model that depends on the split alone (Retrain): the pairing, the method's
        recipe, epochs, precision, memory layout and device kind (the last three change weights by rounding only,
        but a cached model must be the one a rerun gives, and its stored time, every RTE's numerator, is that
        device's: a CPU Retrain's time beside a GPU unlearning time would inflate RTE several times)."""
        return {
            "split": self.pairing(),
            "recipe": recipe,
            "epochs": epochs,
            "precision": precision,
            "channels_last": channels_last,
            "device": device,
        }

    def evaluation(self, weights: str, rows: dict[str, Any], reader: str, numerics: dict[str, Any]) -> dict[str, Any]:
        """What determines a model's evaluation: its weights' digest, the rows and attack roles (the pairing, whose
        seed seeds the attacks, and the data settings that shape the attacks), the method's reading of the logits
        and the numerics (precision, layout, device, batch), and the package version (the metrics' code)."""
        return {"weights": weights, "rows": self.pairing() | rows, "reader": reader, "numerics": numerics,
                "version": __version__}  # fmt: skip

    def training_state(self, original: dict[str, Any] | None, state: dict[str, Any], precision: str) -> dict[str, Any]:
        """What determines a method's training-time state: the original it starts from (None: its own init), the
        method's settings, data, network, precision and, where the state is split-dependent, the split and seed."""
        return {
            "original": original,
            "state": state,
            "dataset": self.dataset,
            "pipeline": self.pipeline,
            "network": self.network,
            "precision": precision,
            "split": self.pairing() if state.get("split_dependent") else None,
        }


# Settings that locate, show or log a run but decide none of its numbers.
NOT_DECIDING = ("config", "cache_dir", "tune", "data.root", "data.download", "trainer.default_root_dir",
                "trainer.logger", "trainer.enable_progress_bar", "trainer.enable_model_summary")  # fmt: skip


def run_key(settings: dict[str, Any]) -> str:
    """The grid's key of a run: a hash of its `camu fit` settings fully resolved (parsed as `camu fit` parses them,
    with every class's defaults in place, a nested class's included) less `NOT_DECIDING`, and the package's major
    version. Two configs that resolve to the same run share it; a changed class default changes it."""
    resolved = with_class_defaults(without_paths(json.loads(json.dumps(settings, default=str))))
    for dotted in NOT_DECIDING:
        *groups, leaf = dotted.split(".")
        owner = resolved
        for group in groups:
            owner = owner.get(group) or {}
        owner.pop(leaf, None)
    # 0 training batches is accepted only for a method that trains nothing (the run refuses it for any other, see
    # run/guards.py), where it is the same run as no limit.
    if resolved.get("trainer", {}).get("limit_train_batches") == 0:
        resolved["trainer"]["limit_train_batches"] = None
    return cache_key({"run": resolved, "major": __version__.split(".")[0]})


def without_paths(value: Any) -> Any:
    """`value` without the `__path__` entries the parser records for a group read from a file of its own (where
    the settings were written, not what they are)."""
    if isinstance(value, list):
        return [without_paths(item) for item in value]
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items() if key != "__path__"}
    return value


def with_class_defaults(value: Any) -> Any:
    """`value` with each `class_path` mapping's init_args completed by its class's defaults, recursively (the parser
    completes the method's own; a network or callback named inside it arrives as its class path alone)."""
    if isinstance(value, list):
        return [with_class_defaults(item) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: with_class_defaults(item) for key, item in value.items()}
    if isinstance(value.get("class_path"), str):
        module, _, name = value["class_path"].rpartition(".")
        parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters.values()
        defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
        given = value.get("init_args") or {}
        value["init_args"] = json.loads(json.dumps(defaults | given, default=str))
    return value
