"""SCRUB (Kurmanji, Triantafillou & Triantafillou, NeurIPS 2023; baselines.md section 6; meghdadk/SCRUB).

The student starts from the original (the frozen teacher). Each epoch e = 1..E: for e <= msteps, a max pass
over D_f with loss -d(x_f); then a min pass over D_r with loss gamma * CE + alpha * d(x_r); d is the
teacher-student KL at temperature T, times T^2, batch mean (`DistillKL`). One optimizer serves both passes;
its learning rate decays by `decay_rate` after each epoch in `decay_epochs`.

SCRUB+R (`rewind: true`, the reference's `MIA_experiments.ipynb`): the states after every epoch are kept, with
state 0 = the original; the returned one is the first whose forget error (eval mode and transform) is closest to a
reference error: the final state's error on held-out rows of the forget distribution, here the test rows whose
label is among D_f's (the reference uses a validation split; the suite has none, so this selection touches test
data). The reference crashes when it selects state 0 (no checkpoint); here it returns the original. The per-epoch
errors and the selection count in the unlearning time.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from camu_lightning.data.streams import Stream
from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.models import Frozen
from camu_lightning.passes import error_percent
from camu_lightning.utils.train_logging import log_train_values


def distill_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """T^2 * KL(softmax_T(teacher) || softmax_T(student)), summed over classes, mean over the batch."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    teacher = F.softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_student, teacher, reduction="sum") * temperature**2 / len(student_logits)


def learning_rate_factor(epoch: int, decay_epochs: list[int], decay_rate: float) -> float:
    """lr_e / lr_0 for the 1-indexed epoch e: decay_rate ** #{m in decay_epochs : e > m}."""
    return decay_rate ** sum(epoch > milestone for milestone in decay_epochs)


class SCRUB(UnlearningMethod):
    """Alternating max (forget) and min (remain) passes against the frozen original.

    Args:
        optimizer: `sgd` (large preset, default) or `adam` (small preset).
        msteps: epochs that start with a max pass.
        temperature: T of the distillation.
        ce_weight: gamma, weight of the remain CE.
        kl_weight: alpha, weight of the remain distillation.
        decay_epochs, decay_rate: learning-rate steps.
        forget_batch_size, remain_batch_size: batch sizes of the max and min passes.
        rewind: SCRUB+R, return the state whose forget error is closest to the held-out reference.
    """

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        optimizer: Literal["sgd", "adam"],
        lr: float,
        momentum: float,
        weight_decay: float,
        msteps: int,
        temperature: float,
        ce_weight: float,
        kl_weight: float,
        decay_epochs: list[int],
        decay_rate: float,
        forget_batch_size: int,
        remain_batch_size: int,
        rewind: bool,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"unknown model.optimizer '{optimizer}'; choose from: sgd, adam")
        if msteps < 0 or temperature <= 0 or lr <= 0:
            raise ValueError(f"model.msteps must be >= 0, temperature and lr > 0; got {msteps}, {temperature}, {lr}")
        self.original = Frozen(self.network)
        self.states: list[dict[str, Tensor]] = []  # SCRUB+R: state i after epoch i (0: the original)
        self.forget_errors: list[float] = []
        self.rewound_to: int | None = None
        self.reference_error = float("nan")

    def load_original(self, state_dict: dict[str, Tensor]) -> None:
        super().load_original(state_dict)
        self.original.network.load_state_dict(state_dict)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.hparams.rewind:
            self.keep_state()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if self.hparams.rewind:
            self.keep_state()

    def keep_state(self) -> None:
        """SCRUB+R: the current weights and their forget error."""
        self.forget_errors.append(error_percent(self.network, self.pass_loaders["forget_fixed"]))
        self.states.append({key: value.detach().clone() for key, value in self.network.state_dict().items()})

    def on_train_end(self) -> None:
        if self.hparams.rewind:
            self.rewind()
        super().on_train_end()

    def rewind(self) -> None:
        """Load the first state whose forget error is closest to the final state's error on held-out rows of D_f's
        classes."""
        forget_classes = torch.unique(torch.cat([batch["y"] for batch in self.pass_loaders["forget_fixed"]]))
        self.reference_error = error_percent(self.network, self.pass_loaders["test_fixed"], forget_classes)
        distances = [abs(error - self.reference_error) for error in self.forget_errors]
        self.rewound_to = distances.index(min(distances))  # the first on ties
        self.network.load_state_dict(self.states[self.rewound_to])
        self.states.clear()  # the copies are not needed past the choice

    def unlearning_summary(self) -> dict[str, Any]:
        summary = super().unlearning_summary()
        if self.rewound_to is not None:
            summary |= {"scrub_rewound_to_epoch": self.rewound_to, "scrub_reference_error": self.reference_error}
        return summary

    def train_streams(self) -> dict[str, Stream]:
        hp = self.hparams
        return {"forget_then_remain": Stream(hp.remain_batch_size, forget_batch_size=hp.forget_batch_size)}

    def pass_streams(self) -> dict[str, int]:
        size = self.hparams.remain_batch_size  # SCRUB+R's forget errors and its held-out reference error
        return {"forget_fixed": size, "test_fixed": size} if self.hparams.rewind else {}

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor | None:
        rows = batch["forget_then_remain"]
        hp = self.hparams
        is_forget = bool(rows["is_forget"][0])
        if is_forget and self.current_epoch + 1 > hp.msteps:
            return None  # after msteps epochs the forget part is passed over: no forward, no step
        logits = self.network(rows["x"])[0]
        distance = distill_kl(logits, self.original(rows["x"])[0], hp.temperature)
        if is_forget:
            loss = -distance
            log_train_values(self, {"train/forget_kl": distance})
        else:
            ce = F.cross_entropy(logits.float(), rows["y"])
            loss = hp.ce_weight * ce + hp.kl_weight * distance
            log_train_values(self, {"train/remain_ce": ce, "train/remain_kl": distance})
        self.check_finite(loss)
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                self.network.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
            )
        else:
            optimizer = torch.optim.Adam(self.network.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        # LambdaLR's epoch counter is the number of finished epochs, so epoch e (1-indexed) = counter + 1.
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda finished: learning_rate_factor(finished + 1, list(hp.decay_epochs), hp.decay_rate)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
