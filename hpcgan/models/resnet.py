"""A ResNet discriminator (SN-GAN, Miyato et al. 2018): residual blocks that halve the resolution,
widths doubling with depth, spectral norm on every layer, no normalisation layer (so the gradient
penalties of R1 and WGAN-GP stay per-sample)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm as sn

from hpcgan.models.dcgan import levels_for
from hpcgan.models.heads import DiscriminatorHeads


class DownBlock(nn.Module):
    """relu-conv-relu-conv-avgpool, plus a 1x1-conv-avgpool shortcut. The first block skips the
    leading relu (the input is an image, not an activation)."""

    def __init__(self, w_in: int, w_out: int, wrap, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = wrap(nn.Conv2d(w_in, w_out, 3, 1, 1))
        self.conv2 = wrap(nn.Conv2d(w_out, w_out, 3, 1, 1))
        self.shortcut = wrap(nn.Conv2d(w_in, w_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        return F.avg_pool2d(h, 2) + self.shortcut(F.avg_pool2d(x, 2))


class ResNetDiscriminator(nn.Module):
    """Returns (real/fake logit [B], class logits [B, C] or None), like DCGANDiscriminator."""

    def __init__(
        self,
        resolution: int,
        width: int = 64,
        num_classes: int = 0,
        conditional: str = "none",
        spectral: bool = True,
        max_width: int = 512,
    ) -> None:
        super().__init__()
        wrap = sn if spectral else (lambda m: m)
        widths = [min(width * 2**i, max_width) for i in range(levels_for(resolution))]
        blocks = [DownBlock(1, widths[0], wrap, first=True)]
        blocks += [DownBlock(a, b, wrap) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        self.blocks = nn.Sequential(*blocks)  # resolution -> 4 px
        self.heads = DiscriminatorHeads(widths[-1], num_classes, conditional, wrap)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling, as in SN-GAN
        return self.heads(h, labels)
