"""Retrain: the gold standard. A fresh network trained on D_r only (baselines.md section 1).

The network comes from its constructor under the run seed (never the original's weights) and follows the
paper's Retrain recipe: Adam with coupled weight decay, batch 32, twice the original's epochs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.utils.train_logging import log_train_values


class Retrain(UnlearningMethod):
    """Cross-entropy training from scratch on the remain set; its whole training is its unlearning time.

    Args:
        lr: Adam learning rate (CNN 1e-3, ResNet-18 5e-5).
        weight_decay: Adam's coupled L2 (1e-4).
        batch_size: 32.
    """

    starts_from_original = False
    caches_unlearned_model = True

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        lr: float,
        weight_decay: float,
        batch_size: int,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if lr <= 0 or batch_size < 1 or weight_decay < 0:
            raise ValueError(
                f"model: lr and batch_size must be > 0 and weight_decay >= 0, got {lr}, {batch_size}, {weight_decay}"
            )

    def train_streams(self) -> dict[str, int]:
        return {"remain": self.hparams.batch_size}

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        remain = batch["remain"]
        loss = F.cross_entropy(self.network(remain["x"])[0].float(), remain["y"])
        self.check_finite(loss)
        log_train_values(self, {"train/remain_ce": loss}, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
