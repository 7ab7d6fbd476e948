"""Boundary Expanding (Chen et al., CVPR 2023; baselines.md section 4).

The classifier head is widened by a shadow class K, the whole network is trained to put D_f into it, and
the shadow row is pruned away, leaving the original architecture; the forget samples end up spread over
the nearest real classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.models.embedding import last_linear
from camu_lightning.utils.train_logging import log_train_values


def classifier_head(network: nn.Module) -> tuple[nn.Module, str]:
    """(parent, attribute) of the network's last Linear, its classifier head (the CNN's `fc2[1]`, a torchvision
    ResNet's `fc`)."""
    parent, _, name = last_linear(network).rpartition(".")
    return network.get_submodule(parent), name


class BoundaryExpanding(UnlearningMethod):
    """Widen to K+1 outputs, train CE(f+(x_f), K), prune back to K. Metrics always read the first K logits."""

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        lr: float,
        momentum: float,
        batch_size: int,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        self.widened = False

    def train_streams(self) -> dict[str, int]:
        return {"forget_fixed": self.hparams.batch_size}

    def setup(self, stage: str) -> None:
        # Before Lightning builds the optimizer, so the shadow row is trained with everything else.
        if stage == "fit" and not self.widened:
            self.widen()

    def widen(self) -> None:
        parent, name = classifier_head(self.network)
        head: nn.Linear = getattr(parent, name)
        wide = nn.Linear(head.in_features, head.out_features + 1).to(head.weight.device)
        with torch.no_grad():
            wide.weight[:-1], wide.bias[:-1] = head.weight, head.bias
            nn.init.xavier_normal_(wide.weight[-1:])
            wide.bias[-1] = 0
        setattr(parent, name, wide)
        self.widened = True

    def prune(self) -> None:
        parent, name = classifier_head(self.network)
        wide: nn.Linear = getattr(parent, name)
        head = nn.Linear(wide.in_features, wide.out_features - 1).to(wide.weight.device)
        with torch.no_grad():
            head.weight.copy_(wide.weight[:-1])
            head.bias.copy_(wide.bias[:-1])
        setattr(parent, name, head)
        self.widened = False

    def evaluation_logits(self, x: Tensor) -> Tensor:
        return self.network(x)[0][:, : self.hparams.num_classes]

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        forget = batch["forget_fixed"]
        logits = self.network(forget["x"])[0].float()
        loss = F.cross_entropy(logits, torch.full_like(forget["y"], self.hparams.num_classes))
        self.check_finite(loss)
        log_train_values(self, {"train/shadow_ce": loss}, prog_bar=True)
        return loss

    def on_train_end(self) -> None:
        self.prune()
        super().on_train_end()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.network.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum)
