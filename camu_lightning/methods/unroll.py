"""Unroll (Thudi, Deza, Chandrasekaran & Papernot, EuroS&P 2022; baselines.md section 8).

Training-time state: from the original theta_0, one epoch of plain SGD that presents every forget batch first,
then D_r; the updates u_j = eta * g_j of the forget steps are summed into U as they are applied. Unlearning
adds them back in closed form: theta_unl = theta_T + U, on parameters only. To first order (exactly when the
gradients do not depend on the weights) that is the pass run without the forget batches.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camu_lightning.data.splits import UNROLL_STREAM, seeded_rng
from camu_lightning.data.streams import Stream
from camu_lightning.methods.base import NetworkFactory, UnlearningMethod


class UnrollRecorder(L.LightningModule):
    """The recording pass: plain SGD (no momentum, weight decay or clipping), float32, recording eta * grad."""

    def __init__(self, network: nn.Module, lr: float, batch_size: int) -> None:
        super().__init__()
        self.network, self.lr, self.batch_size = network, lr, batch_size
        self.added_back: dict[str, Tensor] = {}
        self.recording = False

    def on_train_start(self) -> None:
        # Here the network is on the run's device, so the sum stays there and no step copies a gradient to the host.
        self.added_back = {name: torch.zeros_like(p) for name, p in self.network.named_parameters()}

    def train_streams(self) -> dict[str, Stream]:
        return {"forget_then_remain": Stream(self.batch_size)}

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), labels)

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        rows = batch["forget_then_remain"]
        self.recording = bool(rows["is_forget"][0])
        return self.loss(self.network(rows["x"])[0], rows["y"])

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Here the gradient exists and is the one SGD is about to apply at theta_j.
        if self.recording:
            for name, parameter in self.network.named_parameters():
                if parameter.grad is not None:
                    self.added_back[name] += self.lr * parameter.grad.detach()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.network.parameters(), lr=self.lr)


class Unroll(UnlearningMethod):
    """theta_unl = theta_T + U from the cached recording pass; nothing to iterate (it asks for no training stream).

    Args:
        lr: the recording pass's SGD learning rate (0.01).
        batch_size: its batch size (32).
    """

    distributable = False
    epoch_range = (1, 1)  # its work happens once, at fit start

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        lr: float,
        batch_size: int,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if lr <= 0 or batch_size < 1:
            raise ValueError(f"model.lr and model.batch_size must be > 0, got {lr}, {batch_size}")
        self.added_back: dict[str, Tensor] = {}

    def training_state_settings(self) -> dict[str, Any]:
        return {
            "method": "Unroll",
            "lr": self.hparams.lr,
            "batch_size": self.hparams.batch_size,
            "seed": self.hparams.seed,
            "split_dependent": True,
        }

    def create_training_state(self, datamodule: L.LightningDataModule, trainer_settings: dict[str, Any]) -> dict:
        recorder = UnrollRecorder(copy.deepcopy(self.network), self.hparams.lr, self.hparams.batch_size)
        trainer = L.Trainer(**(trainer_settings | {"max_epochs": 1, "precision": "32-true"}))
        # Its own seed for whatever draws from the global RNG (augmentation), so the pass is the same whether it
        # runs right after the original was trained or after a cached one was loaded; the batch order is seeded.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seeded_rng(self.hparams.seed, UNROLL_STREAM).integers(2**62)))
            trainer.fit(recorder, train_dataloaders=datamodule.train_loaders(recorder.train_streams()))
        state_dict = {key: value.detach().cpu() for key, value in recorder.network.state_dict().items()}
        return {"recorded": state_dict, "added_back": {k: v.cpu() for k, v in recorder.added_back.items()}}

    def load_training_state(self, state: dict) -> None:
        self.network.load_state_dict(state["recorded"])
        self.added_back = state["added_back"]

    def train_streams(self) -> dict[str, int]:
        return {}  # nothing to iterate: its work happens at fit start

    def on_fit_start(self) -> None:
        super().on_fit_start()
        with torch.no_grad():
            for name, parameter in self.network.named_parameters():
                parameter.add_(self.added_back[name].to(parameter.device))

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> None:
        raise RuntimeError("Unroll has no training loop: it asks for no training stream, so fit runs no batch")

    def configure_optimizers(self) -> None:
        return None  # the add-back is closed-form
