"""Networks from a model description (plain values, so that `models` needs nothing from `train`)."""

from __future__ import annotations

from torch import nn

from hpcgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from hpcgan.models.mlp import MLPDiscriminator, MLPGenerator


def build_networks(
    arch: str,
    resolution: int,
    z_dim: int,
    g_width: int,
    d_width: int,
    conditional: str,
    num_classes: int,
    d_batchnorm: bool,
    d_spectral_norm: bool,
) -> tuple[nn.Module, nn.Module]:
    classes_g = num_classes if conditional != "none" else 0
    if arch == "mlp":
        if conditional != "none":
            raise ValueError("the mlp architecture is unconditional")
        return MLPGenerator(resolution, z_dim, g_width), MLPDiscriminator(resolution, d_width)
    if arch == "dcgan":
        g = DCGANGenerator(resolution, z_dim, g_width, classes_g)
        d = DCGANDiscriminator(resolution, d_width, num_classes, conditional, d_batchnorm, d_spectral_norm)
        return g, d
    raise ValueError(f"arch {arch!r}: expected dcgan or mlp")
