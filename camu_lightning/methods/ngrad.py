"""NGrad: NegGrad+ (default) and pure gradient ascent (baselines.md section 2).

NegGrad+ (Kurmanji et al. 2023, meghdadk/SCRUB `train_negrad`) fine-tunes on D_r while ascending the loss
on D_f: loss = alpha * CE(remain) - (1 - alpha) * CE(forget) [+ alpha * lambda/2 * ||theta - theta_start||^2].
`mode: ascent` keeps only -CE(forget) (the NegGrad of Golatkar et al. 2020). Gradients are clipped to a
global norm (our addition: no reference clips), and a non-finite loss or parameter stops the run.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.utils.train_logging import log_train_values


class NGrad(UnlearningMethod):
    """Gradient ascent on the forget set, paired with descent on the remain set in NegGrad+ mode.

    Args:
        mode: `neggrad_plus` (remain batches from one pass over D_r, forget batches cycled and reshuffled) or
            `ascent` (forget batches only).
        alpha: weight of the remain CE; the forget CE gets 1 - alpha (NegGrad+ only).
        clip_norm: global gradient-norm clip.
        l2_to_init: lambda of the pull towards the starting weights (0 = off).
    """

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        mode: Literal["neggrad_plus", "ascent"],
        lr: float,
        alpha: float,
        remain_batch_size: int,
        forget_batch_size: int,
        clip_norm: float,
        l2_to_init: float,
        momentum: float,
        weight_decay: float,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if mode not in ("neggrad_plus", "ascent"):
            raise ValueError(f"unknown model.mode '{mode}'; choose from: neggrad_plus, ascent")
        if not 0 <= alpha <= 1:
            raise ValueError(f"model.alpha must be in [0, 1], got {alpha}")
        if lr <= 0 or clip_norm <= 0:
            raise ValueError(f"model.lr and model.clip_norm must be > 0, got {lr}, {clip_norm}")
        self.start: list[Tensor] = []

    def train_streams(self) -> dict[str, int]:
        streams = {"forget": self.hparams.forget_batch_size}
        return streams if self.hparams.mode == "ascent" else {"remain": self.hparams.remain_batch_size} | streams

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.start = [p.detach().clone() for p in self.network.parameters()] if self.hparams.l2_to_init else []

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        forget = batch["forget"]
        forget_ce = F.cross_entropy(self.network(forget["x"])[0].float(), forget["y"])
        if self.hparams.mode == "ascent":
            loss = -forget_ce
        else:
            alpha, remain = self.hparams.alpha, batch["remain"]
            remain_ce = F.cross_entropy(self.network(remain["x"])[0].float(), remain["y"])
            loss = alpha * remain_ce - (1 - alpha) * forget_ce
            if self.start:
                distance = sum(
                    ((p - p0) ** 2).sum() for p, p0 in zip(self.network.parameters(), self.start, strict=True)
                )
                loss = loss + alpha * self.hparams.l2_to_init / 2 * distance
            log_train_values(self, {"train/remain_ce": remain_ce})
        self.check_finite(loss)
        log_train_values(self, {"train/forget_ce": forget_ce, "train/loss": loss}, prog_bar=True)
        return loss

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        self.clip_gradients(optimizer, gradient_clip_val=self.hparams.clip_norm, gradient_clip_algorithm="norm")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.SGD(self.network.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
