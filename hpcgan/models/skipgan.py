"""The 512 px skip-connection generator (seed 004): upsampling blocks from a 4x4 seed, more filters
deeper (at low resolution), and a to-image output at every resolution whose upsampled sum forms the
final image. Those skip paths let fine detail come straight from the high-resolution blocks while
the deep blocks settle the anatomy (the "skip" generator of StyleGAN2, without style modulation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hpcgan.models.dcgan import levels_for
from hpcgan.models.label_embedding import LabelEmbedding


class UpBlock(nn.Module):
    """nearest-upsample x2, then two conv3x3-BN-ReLU."""

    def __init__(self, w_in: int, w_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(w_in, w_out, 3, 1, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True),
            nn.Conv2d(w_out, w_out, 3, 1, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True),
        )  # fmt: skip
        self.to_image = nn.Conv2d(w_out, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return h, self.to_image(h)


class SkipGenerator(nn.Module):
    def __init__(
        self, resolution: int, z_dim: int = 128, width: int = 16, num_classes: int = 0, max_width: int = 256
    ) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        levels = levels_for(resolution)
        widths = [min(width * 2 ** (levels - i), max_width) for i in range(levels + 1)]  # 4 px .. resolution
        self.embed = LabelEmbedding(num_classes, z_dim) if num_classes else None
        in_dim = z_dim * (2 if num_classes else 1)
        self.project = nn.Sequential(
            nn.Linear(in_dim, widths[0] * 16, bias=False), nn.BatchNorm1d(widths[0] * 16), nn.ReLU(True)
        )
        self.blocks = nn.ModuleList(UpBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.seed_width = widths[0]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        h = self.project(z).view(len(z), self.seed_width, 4, 4)
        image = None
        for block in self.blocks:
            h, out = block(h)
            image = out if image is None else F.interpolate(image, scale_factor=2, mode="bilinear") + out
        return torch.tanh(image)
