"""The vanilla GAN of the seed notebooks: fully connected G and D on flattened images."""

from __future__ import annotations

import torch
from torch import nn

from hpcgan.models.label_embedding import LabelEmbedding


class MLPGenerator(nn.Module):
    def __init__(self, resolution: int, z_dim: int = 128, width: int = 256, num_classes: int = 0) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.resolution = z_dim, num_classes, resolution
        self.embed = LabelEmbedding(num_classes, z_dim) if num_classes else None
        in_dim = z_dim * (2 if num_classes else 1)
        self.net = nn.Sequential(
            nn.Linear(in_dim, width), nn.LeakyReLU(0.2, True),
            nn.Linear(width, width * 2), nn.LeakyReLU(0.2, True),
            nn.Linear(width * 2, width * 4), nn.LeakyReLU(0.2, True),
            nn.Linear(width * 4, resolution * resolution), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z).view(len(z), 1, self.resolution, self.resolution)


class MLPDiscriminator(nn.Module):
    def __init__(self, resolution: int, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(resolution * resolution, width * 4), nn.LeakyReLU(0.2, True),
            nn.Linear(width * 4, width * 2), nn.LeakyReLU(0.2, True),
            nn.Linear(width * 2, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.net(x).squeeze(1), None
