"""Finetune: fine-tune the original on remain data only (the CaMU paper's RQ2 setting 1, baselines.md section 9).

Default: CaMU's remain-CE term alone, on CaMU's remain sample set S, with CaMU's Adam_CE and epochs
(so it equals CaMU with `terms: [remain_ce]`). `stream: remain` with SGD gives the classic Finetune of
meghdadk/SCRUB (lr 0.01, 10 epochs, batch 128, all of D_r).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.utils.train_logging import log_train_values


class Finetune(UnlearningMethod):
    """remain_ce_weight * CE(f(x_r), y_r) on remain batches; D_f is never read.

    Args:
        stream: `remain_sample` (S, |S| = |D_f|: CaMU's stream) or `remain` (all of D_r).
        optimizer: `adam` (coupled weight decay, as CaMU's Adam_CE) or `sgd` (with `momentum`).
    """

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        lr: float,
        weight_decay: float,
        batch_size: int,
        remain_ce_weight: float,
        stream: Literal["remain_sample", "remain"],
        optimizer: Literal["adam", "sgd"],
        momentum: float,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if stream not in ("remain_sample", "remain"):
            raise ValueError(f"unknown model.stream '{stream}'; choose from: remain_sample, remain")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown model.optimizer '{optimizer}'; choose from: adam, sgd")
        if lr < 0 or batch_size < 1:  # lr 0 leaves the original unchanged: the do-nothing control
            raise ValueError(f"model.lr must be >= 0 and model.batch_size >= 1, got {lr}, {batch_size}")

    def train_streams(self) -> dict[str, int]:
        return {self.hparams.stream: self.hparams.batch_size}

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        remain = batch[self.hparams.stream]
        loss = self.hparams.remain_ce_weight * F.cross_entropy(self.network(remain["x"])[0].float(), remain["y"])
        self.check_finite(loss)
        log_train_values(self, {"train/remain_ce": loss}, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        if hp.optimizer == "adam":
            return torch.optim.Adam(self.network.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        return torch.optim.SGD(self.network.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
