"""The original (pre-unlearning) model: the paper's training recipe as a plain classifier LightningModule, and
where a run gets its weights from (a user's checkpoint, the cache, or training).

camu.md section 7: cross-entropy, Adam with coupled weight decay, batch 32, shuffled, train augmentation,
fresh init; the CNN trains 10 epochs at lr 1e-3, ResNet-18 20 epochs at lr 5e-5.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camu_lightning.cache import CheckpointCache, load_state_dict
from camu_lightning.keys import cache_key
from camu_lightning.utils.train_logging import log_train_values


@dataclass
class OriginalRecipe:
    """How the original model is trained, or where a trained one is.

    Args:
        epochs: training epochs (CNN 10, ResNet-18 20).
        lr: Adam learning rate (CNN 1e-3, ResNet-18 5e-5).
        weight_decay: Adam's coupled L2 (1e-4).
        batch_size: training batch size (32).
        seed: seeds the original's init and batch order; one original serves every run seed (camu.md section 7).
        precision: Lightning precision of the original's training, independent of the unlearning run's, so a
            bf16 unlearning run unlearns the same original as a float32 one.
        checkpoint: a state_dict (.pt) or Lightning checkpoint (.ckpt) of your own trained network to unlearn
            instead; the recipe is then unused.
    """

    epochs: int
    lr: float
    weight_decay: float
    batch_size: int
    seed: int
    precision: str
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "lr", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"original.{name} must be > 0, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"original.weight_decay must be >= 0, got {self.weight_decay}")

    def training_settings(self) -> dict:
        """The recipe's part of the cache key (precision is keyed beside it)."""
        return {name: value for name, value in asdict(self).items() if name not in ("checkpoint", "precision")}


class Classifier(L.LightningModule):
    """Cross-entropy training of a (logits, embedding) network with Adam.

    Args:
        optimizer_state: an Adam state_dict to continue from (SISA's next stage), None for a fresh Adam.
        stream: the training stream: `train` (all of D: the original) or `remain` (D_r: relearning).
    """

    def __init__(
        self,
        network: nn.Module,
        lr: float,
        weight_decay: float,
        batch_size: int,
        optimizer_state: dict[str, Any] | None = None,
        stream: str = "train",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "optimizer_state"])
        self.network = network
        self.optimizer_state = optimizer_state

    def train_streams(self) -> dict[str, int]:
        return {self.hparams.stream: self.hparams.batch_size}

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        rows = batch[self.hparams.stream]
        logits, _ = self.network(rows["x"])
        loss = F.cross_entropy(logits.float(), rows["y"])
        log_train_values(self, {"train/loss": loss}, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam(
            self.network.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        if self.optimizer_state is not None:  # after the strategy moved the network: the moments follow it
            # A copy: Adam keeps loaded tensors that already have the parameter's device and dtype, and steps them in
            # place, which would rewrite the stored state it came from (an earlier stage's checkpoint).
            optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        return optimizer


def on_one_device(device: torch.device) -> dict[str, Any]:
    """Trainer settings for training on exactly this device (a nested fit beside the run, never distributed)."""
    return {
        "accelerator": {"cuda": "gpu"}.get(device.type, device.type),
        "devices": [device.index] if device.type == "cuda" else 1,
    }


def fit_state_dict(network: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """The state_dict if its keys and shapes are the network's, else a one-line error saying how they differ."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{what} does not match the network ({type(network).__name__}): "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, value in expected.items():
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{what} does not match the network ({type(network).__name__}): {key} has shape "
                f"{tuple(state_dict[key].shape)}, the network {tuple(value.shape)} "
                "(another architecture or class count?)"
            )
    return state_dict


def read_user_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """A plain state_dict, or a Lightning checkpoint of a module holding the network as `network`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"original.checkpoint {path} does not exist")
    remedy = "save the network's weights with torch.save(network.state_dict(), path)"
    loaded = load_state_dict(Path(path), "original.checkpoint", remedy)
    state_dict = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f"original.checkpoint {path} holds no state_dict; {remedy}")
    if any(key.startswith("network.") for key in state_dict):
        state_dict = {key[len("network.") :]: value for key, value in state_dict.items() if key.startswith("network.")}
    not_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ValueError(
            f"original.checkpoint {path}: {not_tensors[0]!r} is a {type(state_dict[not_tensors[0]]).__name__}, "
            f"not a tensor; {remedy}"
        )
    return state_dict


def original_weights(
    recipe: OriginalRecipe,
    network: nn.Module,
    network_factory: Callable[[int, tuple[int, int, int]], nn.Module],
    datamodule: L.LightningDataModule,
    cache: CheckpointCache,
    settings: dict[str, Any],
    trainer_settings: dict[str, Any],
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(state_dict, what results.json says of it): the user's checkpoint, else the cached original for these
    settings, else a fresh network from `network_factory` trained by the recipe under original.seed and cached;
    checked against `network`, the method's."""
    if recipe.checkpoint is not None:
        state_dict = read_user_checkpoint(recipe.checkpoint)
        return fit_state_dict(network, state_dict, f"original.checkpoint {recipe.checkpoint}"), {
            "original_source": str(recipe.checkpoint)
        }

    def train() -> dict[str, Tensor]:
        L.seed_everything(recipe.seed, verbose=False)
        fresh = network_factory(datamodule.num_classes, tuple(datamodule.input_shape))
        classifier = Classifier(fresh, recipe.lr, recipe.weight_decay, recipe.batch_size)
        trainer = L.Trainer(**(trainer_settings | {"max_epochs": recipe.epochs, "precision": recipe.precision}))
        trainer.fit(classifier, train_dataloaders=datamodule.train_loaders(classifier.train_streams()))
        return {key: value.detach().cpu() for key, value in classifier.network.state_dict().items()}

    entry, created = cache.load_or_create("original", settings, train)
    key = cache_key(settings)
    state_dict = fit_state_dict(
        network, entry["state_dict"], f"cached original checkpoint {cache.path('original', key)}"
    )
    return state_dict, {
        "original_source": "trained" if created else "cache",
        "original_cache_key": key,
        "time_original_s": entry["extra"]["time_create_s"],
    }
