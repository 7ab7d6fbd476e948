"""The paper's MNIST CNN (official `Model.CNN`): two conv blocks, then three linear layers."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CNN(nn.Module):
    """Conv(16, k5) -> ReLU -> pool -> Conv(32, k5) -> ReLU -> pool -> fc1(256) -> fc2(128 -> C).

    The embedding is fc1's output, with no activation; no nonlinearity follows the conv blocks, so the three
    linear layers compose to one affine map (kept as in the official code, since the CaMU KL reads fc1).

    Args:
        num_classes: C, the number of logits.
        input_shape: (channels, height, width); fc1's width is 32 * floor(floor(H/2)/2) * floor(floor(W/2)/2).
    """

    embedding_dim = 256
    returns_embedding = True  # forward gives (logits, embedding): no WithEmbedding needed

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=5, stride=1, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=5, stride=1, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc1 = nn.Linear(32 * (height // 2 // 2) * (width // 2 // 2), self.embedding_dim)
        self.fc2 = nn.Sequential(nn.Linear(self.embedding_dim, 128), nn.Linear(128, num_classes))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        embedding = self.fc1(torch.flatten(self.features(x), 1))
        return self.fc2(embedding), embedding
