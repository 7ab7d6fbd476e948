"""Relearning (the paper's RQ3, camu.md section 9): fine-tune the unlearned model on D_r and watch how fast it
regains D_f. Adam (weight decay 1e-4) at the original recipe's learning rate, batch 32, all of D_r; after each
epoch k the accuracies on D_f and D_r (eval mode and transform). A model that truly forgot regains D_f no faster
than Retrain's model does."""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
from torch import nn
from torch.utils.data import DataLoader

from camu_lightning.data.rows import collate_batch
from camu_lightning.original import Classifier
from camu_lightning.passes import error_percent

RELEARN_WEIGHT_DECAY = 1e-4
RELEARN_BATCH_SIZE = 32


class AccuracyAfterEachEpoch(L.Callback):
    """acc_forget and acc_remain of the network before relearning (epoch 0) and after every epoch."""

    def __init__(self, loaders: dict[str, DataLoader]) -> None:
        self.loaders = loaders
        self.curve: dict[str, list[float]] = {name: [] for name in loaders}

    def record(self, network: nn.Module) -> None:
        for name, loader in self.loaders.items():
            self.curve[name].append(100.0 - error_percent(network, loader))

    def on_train_start(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        self.record(pl_module.network)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        self.record(pl_module.network)


def relearn_curve(
    network: nn.Module, datamodule: Any, lr: float, epochs: int, trainer_settings: dict[str, Any]
) -> dict[str, float]:
    """Flat results keys: relearn_acc_forget_<k> and relearn_acc_remain_<k> for k = 0 (right after unlearning)
    to `epochs`, and their deltas to k = 0 (relearn_delta_acc_forget_<k>, ...)."""
    sets = datamodule.eval_sets
    size = datamodule.hparams.eval_batch_size
    loaders = {
        name: DataLoader(sets[key], batch_size=size, collate_fn=collate_batch)
        for name, key in (("acc_forget", "forget"), ("acc_remain", "remain"))
    }
    watcher = AccuracyAfterEachEpoch(loaders)
    learner = Classifier(copy.deepcopy(network), lr, RELEARN_WEIGHT_DECAY, RELEARN_BATCH_SIZE, stream="remain")
    settings = trainer_settings | {"max_epochs": epochs, "callbacks": [*trainer_settings["callbacks"], watcher]}
    L.Trainer(**settings).fit(learner, train_dataloaders=datamodule.train_loaders(learner.train_streams()))
    results = {}
    for name, values in watcher.curve.items():
        for epoch, value in enumerate(values):
            results[f"relearn_{name}_{epoch}"] = value
            results[f"relearn_delta_{name}_{epoch}"] = value - values[0]
    return results
