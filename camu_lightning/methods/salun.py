"""SalUn, saliency unlearning (Fan et al., ICLR 2024; baselines.md section 11; OPTML-Group/Unlearn-Saliency
`Classification/generate_mask.py` and `unlearn/RL.py`, with PR #33).

Mask: in eval mode, one pass over D_f (batch 256) sums the gradients of -CE; the int(N * ratio) elements of largest
|g|, ranked over all parameters together, are salient (mask 1, updated); the rest are frozen. The mask is built at
fit start, inside the unlearning time, since it depends on D_f.

Unlearning, each epoch (CIFAR-10 form): a pass over D_f with labels redrawn uniformly per batch (possibly the true
one), then a full pass over D_r with true labels, plain CE, one SGD step per batch (momentum 0.9, weight decay 5e-4).
Each step masks the gradient, steps, then restores the frozen elements to their value at the epoch's start and
zeroes their momentum (PR #33: without it weight decay and momentum still moved them).

Adapted: the README's recipe is CIFAR-10's (lr 0.013, 10 epochs, ratio 0.5, batch 256) and gives no class-wise lr;
it is kept for MNIST, where the original was trained for 10 epochs too. BatchNorm statistics are buffers: never
masked, they move (the CNN has none). On the BN-free MNIST CNN the recipe's lr collapses the model: the original is
so confident that random-label CE starts near 19 with gradient norm ~33, and 24 steps at lr 0.013 kill 75 % of
conv1's channels, which the D_r pass cannot revive (accuracy 11 %); the method is faithful, its lr is not
transferable, which `camu tune` (lr from 1e-5) addresses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camu_lightning.data.streams import Stream
from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.passes import summed_gradients
from camu_lightning.utils.train_logging import log_train_values


def saliency_mask(gradients: dict[str, Tensor], ratio: float) -> dict[str, Tensor]:
    """1 for the int(N * ratio) elements of largest |g| over all parameters ranked together, else 0."""
    flat = torch.cat([gradient.abs().reshape(-1) for gradient in gradients.values()])
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    chosen[torch.topk(flat, int(len(flat) * ratio), sorted=False).indices] = True
    masks, start = {}, 0
    for name, gradient in gradients.items():
        masks[name] = chosen[start : start + gradient.numel()].reshape(gradient.shape)
        start += gradient.numel()
    return masks


def negative_ce(logits: Tensor, labels: Tensor) -> Tensor:
    return -F.cross_entropy(logits, labels)


class SalUn(UnlearningMethod):
    """Random-label fine-tuning of the salient weights only.

    Args:
        mask_ratio: share of all parameter elements that are salient (0.5).
        lr, momentum, weight_decay: SGD (0.013, 0.9, 5e-4).
        batch_size: of the mask pass and both unlearning passes (256).
    """

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        mask_ratio: float,
        lr: float,
        momentum: float,
        weight_decay: float,
        batch_size: int,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if not 0 < mask_ratio <= 1 or lr <= 0 or batch_size < 1:
            raise ValueError(
                "model.mask_ratio must be in (0, 1], model.lr > 0, model.batch_size >= 1; "
                f"got {mask_ratio}, {lr}, {batch_size}"
            )
        self.mask: dict[str, Tensor] = {}
        self.epoch_start: dict[str, Tensor] = {}

    def train_streams(self) -> dict[str, Stream]:
        return {"forget_then_remain": Stream(self.hparams.batch_size, forget_batch_size=self.hparams.batch_size)}

    def pass_streams(self) -> dict[str, int]:
        return {"forget": self.hparams.batch_size}  # the saliency pass, with the train transform as the reference

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.network.eval()
        gradients, _ = summed_gradients(self.network, self.pass_loaders["forget"], negative_ce)
        self.network.train()
        self.mask = saliency_mask(gradients, self.hparams.mask_ratio)

    def on_train_epoch_start(self) -> None:
        self.epoch_start = {name: p.detach().clone() for name, p in self.network.named_parameters()}

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        rows = batch["forget_then_remain"]
        labels = rows["y"]
        if bool(rows["is_forget"][0]):  # labels redrawn per batch, uniformly over the classes
            labels = torch.randint(0, self.hparams.num_classes, labels.shape, device=labels.device)
        loss = F.cross_entropy(self.network(rows["x"])[0].float(), labels)
        self.check_finite(loss)
        log_train_values(self, {"train/forget_random_ce" if bool(rows["is_forget"][0]) else "train/remain_ce": loss})
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        for name, parameter in self.network.named_parameters():
            if parameter.grad is not None:
                parameter.grad.mul_(self.mask[name].to(parameter.grad.dtype))

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        restore_frozen(self.network, self.mask, self.epoch_start, optimizer)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.SGD(self.network.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)


@torch.no_grad()
def restore_frozen(
    network: nn.Module, mask: dict[str, Tensor], start: dict[str, Tensor], optimizer: torch.optim.Optimizer
) -> None:
    """theta <- m * theta + (1 - m) * theta_start and momentum_buffer <- m * momentum_buffer (PR #33)."""
    for name, parameter in network.named_parameters():
        frozen = ~mask[name]
        parameter[frozen] = start[name][frozen]
        buffer = getattr(optimizer, "optimizer", optimizer).state.get(parameter, {}).get("momentum_buffer")
        if buffer is not None:
            buffer[frozen] = 0
