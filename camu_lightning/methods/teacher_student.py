"""T-S, the bad teacher (Chundawat et al., AAAI 2023; baselines.md section 5).

A student, starting from the original, copies the competent teacher (the frozen original) on remain rows and
an incompetent teacher (a frozen, never-trained network) on forget rows of a flagged mixture of D_f and a
30 % draw of D_r: loss = KL(t || softmax(z / T)), t = the flagged teacher's softmax(z_teacher / T).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from camu_lightning.data.streams import Stream
from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.models import Frozen
from camu_lightning.utils.train_logging import log_train_values


class TeacherStudent(UnlearningMethod):
    """Distil from the incompetent teacher on forget rows and the competent one on remain rows.

    Args:
        temperature: T of both softmaxes (1); no T^2 factor.
        remain_fraction: share of D_r in the mixture, drawn once per run (0.3).
        kl_reduction: `batchmean` (the true KL, project default) or `mean` (the reference's /(B*K)).
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
        temperature: float,
        remain_fraction: float,
        kl_reduction: Literal["batchmean", "mean"],
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if kl_reduction not in ("batchmean", "mean"):
            raise ValueError(f"unknown model.kl_reduction '{kl_reduction}'; choose from: batchmean, mean")
        if temperature <= 0 or not 0 < remain_fraction <= 1:
            raise ValueError(
                f"model.temperature must be > 0 and model.remain_fraction in (0, 1], got "
                f"{temperature}, {remain_fraction}"
            )
        self.original = Frozen(self.network)
        # A fresh constructor under the run's RNG, never trained.
        self.incompetent = Frozen(self.network_factory(num_classes, tuple(input_shape)))

    def load_original(self, state_dict: dict[str, Tensor]) -> None:
        super().load_original(state_dict)
        self.original.network.load_state_dict(state_dict)

    def train_streams(self) -> dict[str, Stream]:
        return {"flagged_mixture": Stream(self.hparams.batch_size, remain_fraction=self.hparams.remain_fraction)}

    def teacher_target(self, x: Tensor, flag: Tensor) -> Tensor:
        """Per row, the incompetent teacher's softmax where flag = 1 and the competent one's where flag = 0."""
        temperature = self.hparams.temperature
        incompetent = F.softmax(self.incompetent(x)[0].float() / temperature, dim=1)
        competent = F.softmax(self.original(x)[0].float() / temperature, dim=1)
        return torch.where(flag[:, None].bool(), incompetent, competent)

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        mixture = batch["flagged_mixture"]
        target = self.teacher_target(mixture["x"], mixture["flag"])
        log_student = F.log_softmax(self.network(mixture["x"])[0].float() / self.hparams.temperature, dim=1)
        loss = F.kl_div(log_student, target, reduction=self.hparams.kl_reduction)
        self.check_finite(loss)
        log_train_values(self, {"train/teacher_kl": loss}, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
