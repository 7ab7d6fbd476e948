"""The data module's settings checked before anything loads: one line per bad setting, naming it and what is
allowed."""

from __future__ import annotations

from typing import Any

from camu_lightning.data.counterfactual import LABEL_RULES
from camu_lightning.data.transforms import PIPELINES


def check_data_settings(settings: dict[str, Any], own_datasets: tuple[Any, Any]) -> None:
    """Refuse an inconsistent or out-of-range data setting (`settings`: the data module's hyperparameters)."""
    train, test = own_datasets
    if (settings["dataset"] is None) == (train is None or test is None) or (train is None) != (test is None):
        raise ValueError("set data.dataset, or both data.train and data.test (your own datasets), not both")
    forget = ("forget_fraction", "forget_classes", "forget_indices")
    chosen = [name for name in forget if settings[name] is not None]
    if len(chosen) != 1:
        raise ValueError(f"set exactly one of data.{', data.'.join(forget)}; got {', '.join(chosen) or 'none'}")
    if settings["forget_fraction"] is not None and not 0 < settings["forget_fraction"] < 1:
        raise ValueError(f"data.forget_fraction must be in (0, 1), got {settings['forget_fraction']}")
    if settings["forget_classes"] is not None and not settings["forget_classes"]:
        raise ValueError("data.forget_classes must name at least one class")
    if settings["forget_repeat"] < 1:
        raise ValueError(f"data.forget_repeat must be >= 1, got {settings['forget_repeat']}")
    if settings["cf_label_rule"] not in LABEL_RULES:
        raise ValueError(
            f"unknown data.cf_label_rule '{settings['cf_label_rule']}'; choose from: {', '.join(LABEL_RULES)}"
        )
    if settings["pipeline"] not in PIPELINES:
        raise ValueError(f"unknown data.pipeline '{settings['pipeline']}'; choose from: {', '.join(PIPELINES)}")
    for name in ("mia_attack_size", "eval_batch_size"):
        if settings[name] < 1:
            raise ValueError(f"data.{name} must be >= 1, got {settings[name]}")
    check_normalization(settings["mean"], settings["std"])


def check_normalization(mean: Any, std: Any) -> None:
    """`mean` and `std` come together, one value per channel each, every std above 0."""
    if (mean is None) != (std is None):
        raise ValueError("set both data.mean and data.std (your model's input normalisation), or neither")
    if mean is None:
        return
    if len(mean) != len(std) or not len(mean):
        raise ValueError(f"data.mean and data.std need one value per channel each, got {list(mean)} and {list(std)}")
    if any(value <= 0 for value in std):
        raise ValueError(f"data.std must be > 0 for every channel, got {list(std)}")
