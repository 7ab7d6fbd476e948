"""ℓ1-sparse unlearning (Jia et al., NeurIPS 2023, "Model Sparsity Can Simplify Machine Unlearning"; baselines.md
section 13; OPTML-Group/Unlearn-Sparse `--unlearn FT_prune`, i.e. `unlearn/FT.py::FT_iter(with_l1=True)`).

Fine-tuning on D_r alone with loss CE + gamma_e * ||theta||_1 (every parameter, biases included, the norm in fp32),
SGD with momentum 0.9 and weight decay 5e-4 (L2 on top of the l1 term). gamma_e = alpha * (1 - e / (E - n0)) for
the 0-based epoch e < E - n0, else 0: constant within an epoch, decaying linearly per epoch, never reaching 0
before the n0 plain epochs (0 in every epoch when E = n0, as the reference's condition gives).

Adapted: the README gives no alpha; `arg_parser.py`'s 0.2 is shared with other methods and at lr 0.01 moves every
weight by 2e-3 per step, so the default is 5e-4 (lr * alpha = 5e-6 per weight per step), a value third-party
re-implementations of FT_l1 use; `camu tune` searches it. The recipe (lr 0.01, 10 epochs, batch 256) is the
reference's CIFAR one, kept for MNIST: its fine-tuning on D_r is short against the original's 10 epochs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.utils.train_logging import log_train_values


def l1_weight(epoch: int, epochs: int, no_l1_epochs: int, alpha: float) -> float:
    """gamma_e of the 0-based epoch e (Unlearn-Sparse FT_iter)."""
    if epoch < epochs - no_l1_epochs:
        return alpha * (1 - epoch / (epochs - no_l1_epochs))
    return 0.0


class L1Sparse(UnlearningMethod):
    """Fine-tune on D_r under a decaying l1 penalty.

    Args:
        lr, momentum, weight_decay: SGD (0.01, 0.9, 5e-4).
        alpha: gamma_0, the first epoch's l1 weight.
        no_l1_epochs: n0, the last epochs trained without the penalty (0).
        batch_size: D_r batch size (256).
    """

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        lr: float,
        momentum: float,
        weight_decay: float,
        alpha: float,
        no_l1_epochs: int,
        batch_size: int,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if lr <= 0 or alpha < 0 or no_l1_epochs < 0 or batch_size < 1:
            raise ValueError(
                "model.lr must be > 0, model.alpha and model.no_l1_epochs >= 0, model.batch_size >= 1; "
                f"got {lr}, {alpha}, {no_l1_epochs}, {batch_size}"
            )

    def train_streams(self) -> dict[str, int]:
        return {"remain": self.hparams.batch_size}

    @property
    def gamma(self) -> float:
        hp = self.hparams
        return l1_weight(self.current_epoch, self.trainer.max_epochs, hp.no_l1_epochs, hp.alpha)

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        remain = batch["remain"]
        ce = F.cross_entropy(self.network(remain["x"])[0].float(), remain["y"])
        l1 = torch.cat([parameter.float().reshape(-1) for parameter in self.network.parameters()]).abs().sum()
        loss = ce + self.gamma * l1
        self.check_finite(loss)
        log_train_values(self, {"train/remain_ce": ce, "train/l1_norm": l1}, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.SGD(self.network.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
