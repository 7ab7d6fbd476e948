"""ResNet-18 (official `Model.ResNet`): torchvision's resnet18 without pretrained weights, split into an
embedding (the global-average-pool output, 512-d, non-negative after the last ReLU) and a linear head."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.models import resnet18

Stem = Literal["cifar32", "imagenet224"]


class ResNet18(nn.Module):
    """ResNet-18 returning (logits, embedding).

    Args:
        num_classes: C, the number of logits.
        input_shape: (channels, height, width) of the inputs; only the channel count shapes the network.
        stem: `cifar32` (project default: 3x3 stride-1 conv1, no max-pool, for 32x32 inputs) or `imagenet224`
            (the official 7x7 stride-2 conv1 and max-pool, for inputs resized to 224x224).
    """

    embedding_dim = 512
    returns_embedding = True  # forward gives (logits, embedding): no WithEmbedding needed

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int], stem: Stem) -> None:
        super().__init__()
        if stem not in ("cifar32", "imagenet224"):
            raise ValueError(f"unknown network stem '{stem}'; choose from: cifar32, imagenet224")
        backbone = resnet18(weights=None, num_classes=num_classes)
        channels = input_shape[0]
        if stem == "cifar32":
            backbone.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
            backbone.maxpool = nn.Identity()
        elif channels != 3:
            backbone.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.fc2 = backbone.fc
        backbone.fc = nn.Identity()
        self.backbone = backbone

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        embedding = torch.flatten(self.backbone(x), 1)
        return self.fc2(embedding), embedding
