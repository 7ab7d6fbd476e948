"""Boundary Shrink (Chen et al., CVPR 2023; baselines.md section 3).

Each forget sample is relabelled with its nearest wrong class, found by one untargeted FGSM step of size
epsilon (in [0, 1] pixel units) on the frozen original; the model is then fine-tuned on D_f with those labels.
Where FGSM fails to change the label, the target is the runner-up class of the adversarial input (the
nearest boundary to first order) — the reference has no fallback and trains such samples towards y.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.models import Frozen
from camu_lightning.utils.train_logging import log_train_values


class BoundaryShrink(UnlearningMethod):
    """Fine-tune on (x_f, nearest wrong class); D_r is never read.

    Args:
        epsilon: FGSM step and bound, in [0, 1] pixel units (0.1).
        pixel_mean, pixel_std: the data's normalisation (linked from the data module; None: inputs are pixels),
            so the attack steps in true pixel space.
    """

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        epsilon: float,
        lr: float,
        momentum: float,
        batch_size: int,
        pixel_mean: tuple[float, ...] | None = None,
        pixel_std: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if not 0 < epsilon <= 1:
            raise ValueError(f"model.epsilon must be in (0, 1], got {epsilon}")
        self.original = Frozen(self.network)
        scale = (lambda values: torch.tensor(values).view(1, -1, 1, 1)) if pixel_mean is not None else None
        self.register_buffer("mean", scale(pixel_mean) if scale else torch.zeros(1, 1, 1, 1), persistent=False)
        self.register_buffer("std", scale(pixel_std) if scale else torch.ones(1, 1, 1, 1), persistent=False)
        self.targets: Tensor | None = None
        self.attack_successes = self.fallbacks = 0

    def load_original(self, state_dict: dict[str, Tensor]) -> None:
        super().load_original(state_dict)
        self.original.network.load_state_dict(state_dict)

    def train_streams(self) -> dict[str, int]:
        return {"forget_fixed": self.hparams.batch_size}

    def neighbour_search(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(x_adv, target): one FGSM step on the frozen original, then its label, or the runner-up on failure."""
        with torch.enable_grad():
            inputs = x.detach().clone().requires_grad_(True)
            loss = F.cross_entropy(self.original.network(inputs)[0].float(), y)
            (gradient,) = torch.autograd.grad(loss, inputs)
        epsilon = self.hparams.epsilon
        pixels = x * self.std + self.mean
        stepped = torch.clamp(pixels + epsilon * gradient.sign(), pixels - epsilon, pixels + epsilon).clamp(0, 1)
        x_adv = (torch.round(stepped * 255) / 255 - self.mean) / self.std
        logits = self.original(x_adv)[0].float()
        attacked = logits.argmax(dim=1)
        runner_up = logits.scatter(1, y[:, None], float("-inf")).argmax(dim=1)
        succeeded = attacked != y
        self.attack_successes += int(succeeded.sum())
        self.fallbacks += int((~succeeded).sum())
        return x_adv, torch.where(succeeded, attacked, runner_up)

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        forget = batch["forget_fixed"]
        index = forget["index"]
        size = int(index.max()) + 1
        if self.targets is None or size > len(self.targets):  # grown to the largest forget position seen (-1: unknown)
            grown = torch.full((size,), -1, dtype=torch.long, device=self.device)
            if self.targets is not None:
                grown[: len(self.targets)] = self.targets
            self.targets = grown
        unknown = self.targets[index] < 0
        if unknown.any():  # first sight of these samples: the search runs once per sample, as the inputs are fixed
            self.targets[index[unknown]] = self.neighbour_search(forget["x"][unknown], forget["y"][unknown])[1]
        loss = F.cross_entropy(self.network(forget["x"])[0].float(), self.targets[index])
        self.check_finite(loss)
        log_train_values(self, {"train/neighbour_ce": loss}, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.network.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum)

    def unlearning_summary(self) -> dict:
        searched = self.attack_successes + self.fallbacks
        return super().unlearning_summary() | {
            "attack_success_ratio": self.attack_successes / searched if searched else float("nan"),
            "fallback_count": self.fallbacks,
        }
