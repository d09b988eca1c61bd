"""BiGAN (Donahue et al. 2017; seed 003): a generator G: z -> x, an encoder E: x -> z, and a
discriminator on (x, z) pairs that tells (x, E(x)) from (G(z), z). G and E train together against D,
so they live in one module, `BiGANGenerator`, which has one optimiser and one DDP wrapper; its
forward runs both, so that DDP sees every parameter used in the step it reduces."""

from __future__ import annotations

import torch
from torch import nn

from hpcgan.models.dcgan import DCGANGenerator, levels_for


def _conv_features(resolution: int, width: int, max_width: int = 512) -> tuple[nn.Sequential, int]:
    """Stride-2 conv/LeakyReLU stack from resolution to 4x4, flattened; no BatchNorm, so that
    each sample's output depends on that sample only."""
    widths = [min(width * 2**i, max_width) for i in range(levels_for(resolution))]
    layers: list[nn.Module] = []
    for w_in, w_out in zip([1, *widths[:-1]], widths, strict=True):
        layers += [nn.Conv2d(w_in, w_out, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*layers, nn.Flatten()), widths[-1] * 16


class Encoder(nn.Module):
    def __init__(self, resolution: int, z_dim: int, width: int) -> None:
        super().__init__()
        self.features, dim = _conv_features(resolution, width)
        self.to_z = nn.Linear(dim, z_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_z(self.features(x))


class BiGANGenerator(nn.Module):
    """`forward(z)` generates; `forward(z, labels, real)` also encodes `real`, returning both."""

    def __init__(self, resolution: int, z_dim: int = 128, width: int = 64, encoder_width: int = 64) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, 0
        self.generator = DCGANGenerator(resolution, z_dim, width)
        self.encoder = Encoder(resolution, z_dim, encoder_width)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, real: torch.Tensor | None = None):
        fake = self.generator(z)
        return fake if real is None else (fake, self.encoder(real))


class JointDiscriminator(nn.Module):
    """D(x, z): image features and a z embedding, joined by an MLP. Returns (logit [B], None)."""

    def __init__(self, resolution: int, z_dim: int = 128, width: int = 64, joint: int = 512) -> None:
        super().__init__()
        self.x_features, dim = _conv_features(resolution, width)
        self.z_features = nn.Sequential(nn.Linear(z_dim, joint), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(nn.Linear(dim + joint, joint), nn.LeakyReLU(0.2, True), nn.Linear(joint, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, z: torch.Tensor | None = None):
        if z is None:
            raise ValueError("the BiGAN discriminator scores (x, z) pairs: pass z")
        h = torch.cat([self.x_features(x), self.z_features(z)], dim=1)
        return self.joint(h).squeeze(1), None
