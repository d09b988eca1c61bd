"""DCGAN generator and discriminator for 1-channel images at 32..512 px.

The generator upsamples a 4x4 seed with stride-2 transposed convolutions, halving the width at each
step; the discriminator mirrors it. Both take an optional class: the generator through a label
embedding concatenated to z (cGAN) or multiplied into it (`conditioning="multiply"`, the AC-GAN
notebooks' z * embed(c)), the discriminator through a projection term (cGAN) or an auxiliary
classifier head (AC-GAN).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import spectral_norm as sn

from hpcgan.models.heads import DiscriminatorHeads
from hpcgan.models.label_embedding import LabelEmbedding

CONDITIONINGS = ("concat", "multiply")  # how a conditional generator takes its class


def levels_for(resolution: int) -> int:
    levels = int(math.log2(resolution)) - 2
    if 2 ** (levels + 2) != resolution or not 3 <= levels <= 8:
        raise ValueError(f"resolution {resolution}: expected a power of two from 32 to 1024")
    return levels


class DCGANGenerator(nn.Module):
    def __init__(
        self, resolution: int, z_dim: int = 128, width: int = 64, num_classes: int = 0, max_width: int = 512,
        conditioning: str = "concat",
    ) -> None:  # fmt: skip
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"g_conditioning {conditioning!r}: expected one of {', '.join(CONDITIONINGS)}")
        self.z_dim, self.num_classes, self.multiply = z_dim, num_classes, conditioning == "multiply"
        levels = levels_for(resolution)
        widths = [min(width * 2 ** (levels - 1 - i), max_width) for i in range(levels)]
        in_dim = z_dim + (z_dim if num_classes and not self.multiply else 0)
        self.embed = LabelEmbedding(num_classes, z_dim) if num_classes else None
        self.project = nn.Sequential(
            nn.Linear(in_dim, widths[0] * 16, bias=False), nn.BatchNorm1d(widths[0] * 16), nn.ReLU(inplace=True)
        )
        blocks = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            blocks += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        blocks += [nn.ConvTranspose2d(widths[-1], 1, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)
        self.seed_width = widths[0]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = z * self.embed(labels) if self.multiply else torch.cat([z, self.embed(labels)], dim=1)
        x = self.project(z).view(len(z), self.seed_width, 4, 4)
        return self.blocks(x)


class DCGANDiscriminator(nn.Module):
    """Returns (real/fake logit [B], class logits [B, C] or None). `conditional` is "none",
    "projection" (cGAN) or "aux" (AC-GAN)."""

    def __init__(
        self,
        resolution: int,
        width: int = 64,
        num_classes: int = 0,
        conditional: str = "none",
        batchnorm: bool = True,
        spectral: bool = False,
        max_width: int = 512,
    ) -> None:
        super().__init__()
        levels = levels_for(resolution)
        wrap = sn if spectral else (lambda m: m)
        widths = [min(width * 2**i, max_width) for i in range(levels)]
        layers: list[nn.Module] = [wrap(nn.Conv2d(1, widths[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(wrap(nn.Conv2d(w_in, w_out, 4, 2, 1, bias=not batchnorm)))
            if batchnorm:
                layers.append(nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(0.2, True))
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.heads = DiscriminatorHeads(widths[-1] * 16, num_classes, conditional, wrap)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.heads(self.features(x), labels)
