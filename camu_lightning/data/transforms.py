"""Input pipelines as batched tensor ops: scaling, normalisation and per-sample augmentation without PIL.

`plain`: x/255, then (x - mean)/std where the dataset has constants; never augmented (MNIST family).
`cifar32`: the project's CIFAR default; train views get a random 32x32 crop of the 4-pixel zero-padded image
and a horizontal flip with p=0.5, each drawn per sample.
`imagenet224`: the official CaMU pipeline; images resized to 224x224 (bilinear); train views get
RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3)) and a flip with p=0.5.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

Pipeline = Literal["plain", "cifar32", "imagenet224"]
PIPELINES = ("plain", "cifar32", "imagenet224")


class InputPipeline:
    """Turns uint8 NCHW batches into model inputs; picklable, so it crosses process boundaries (DDP spawn)."""

    def __init__(self, kind: Pipeline, mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> None:
        if kind not in PIPELINES:
            raise ValueError(f"unknown data.pipeline '{kind}'; choose from: {', '.join(PIPELINES)}")
        self.kind = kind
        self.mean = None if mean is None else torch.tensor(mean).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std).view(1, -1, 1, 1)

    @property
    def augments(self) -> bool:
        return self.kind != "plain"

    def normalize(self, images: Tensor) -> Tensor:
        """Float images in [0, 1] to the model's input scale."""
        if self.mean is None:
            return images
        return (images - self.mean.to(images.device)) / self.std.to(images.device)

    def eval(self, images: Tensor) -> Tensor:
        """The deterministic view used for every metric and for fixed inputs."""
        pixels = images.float().div_(255)
        if self.kind == "imagenet224":
            pixels = F.interpolate(pixels, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        return self.normalize(pixels)

    def train(self, images: Tensor) -> Tensor:
        """A freshly augmented view, drawn from torch's global RNG (seeded by the run seed)."""
        if self.kind == "plain":
            return self.eval(images)
        if self.kind == "cifar32":
            return self.normalize(_flip(_padded_random_crop(images, padding=4)).float().div_(255))
        pixels = images.float().div_(255)
        pixels = F.interpolate(pixels, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        return self.normalize(_flip(_random_resized_crop(pixels, 224)))


def _padded_random_crop(images: Tensor, padding: int) -> Tensor:
    """torchvision RandomCrop(size, padding) with an independent offset per sample, as one gather."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,))
    left = torch.randint(0, 2 * padding + 1, (batch,))
    rows = (top[:, None] + torch.arange(height)[None]).to(images.device)  # (B, H)
    cols = (left[:, None] + torch.arange(width)[None]).to(images.device)  # (B, W)
    batch_index = torch.arange(batch, device=images.device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2).contiguous()


def _flip(images: Tensor) -> Tensor:
    flip = (torch.rand(images.shape[0]) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def _random_resized_crop(pixels: Tensor, size: int) -> Tensor:
    """RandomResizedCrop with per-sample parameters drawn by torchvision's own sampler."""
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    views = []
    for image in pixels:
        top, left, height, width = v2.RandomResizedCrop.get_params(image, scale=list(scale), ratio=list(ratio))
        views.append(TF.resized_crop(image, top, left, height, width, [size, size], antialias=True))
    return torch.stack(views)
