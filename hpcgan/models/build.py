"""Networks from a model description (plain values, so that `models` needs nothing from `train`).

`arch` names the generator family; `d_arch` the discriminator ("auto" picks the family's own):

| arch    | G                          | D (auto)                    |
|---------|----------------------------|-----------------------------|
| mlp     | MLP                        | MLP                         |
| dcgan   | DCGAN transposed convs     | DCGAN strided convs         |
| skipgan | upsampling blocks + skips  | ResNet                      |
| bigan   | DCGAN G + encoder E        | joint D on (x, z) pairs     |
| r3gan   | R3GAN residual stages      | R3GAN residual stages       |
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hpcgan.models.bigan import BiGANGenerator, JointDiscriminator
from hpcgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from hpcgan.models.mlp import MLPDiscriminator, MLPGenerator
from hpcgan.models.r3gan import R3Discriminator, R3Generator
from hpcgan.models.resnet import ResNetDiscriminator
from hpcgan.models.skipgan import SkipGenerator

ARCHS = ("mlp", "dcgan", "skipgan", "bigan", "r3gan")
D_ARCHS = ("auto", "mlp", "dcgan", "resnet", "r3gan")
_AUTO_D = {"mlp": "mlp", "dcgan": "dcgan", "skipgan": "resnet", "r3gan": "r3gan"}


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    resolution: int
    z_dim: int
    g_width: int
    d_width: int
    conditional: str = "none"  # none | projection | aux
    num_classes: int = 0
    d_arch: str = "auto"
    d_batchnorm: bool = False
    d_spectral_norm: bool = False
    max_width: int = 512  # r3gan: the widest stage
    g_conditioning: str = "concat"  # dcgan: concat | multiply (z * embed(class))
    blocks: int = 2  # r3gan: residual blocks per stage


def build_networks(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    s = spec
    if s.arch not in ARCHS:
        raise ValueError(f"arch {s.arch!r}: expected one of {', '.join(ARCHS)}")
    if s.arch in ("mlp", "bigan") and s.conditional != "none":
        raise ValueError(f"the {s.arch} architecture is unconditional (model.conditional=none)")
    if s.arch == "bigan":
        if s.d_arch != "auto" or s.d_batchnorm:
            raise ValueError("bigan scores (x, z) pairs with its own joint D (model.d_arch=auto, d_batchnorm=false)")
        return BiGANGenerator(s.resolution, s.z_dim, s.g_width, s.d_width), JointDiscriminator(
            s.resolution, s.z_dim, s.d_width
        )
    classes_g = s.num_classes if s.conditional != "none" else 0
    if s.arch == "r3gan":
        if s.conditional == "aux":
            raise ValueError("r3gan conditions by projection (model.conditional=projection or none)")
        g = R3Generator(s.resolution, s.z_dim, s.g_width, classes_g, s.max_width, s.blocks, s.g_conditioning)
    elif s.arch == "dcgan":
        g = DCGANGenerator(s.resolution, s.z_dim, s.g_width, classes_g, conditioning=s.g_conditioning)
    else:
        g = {"mlp": MLPGenerator, "skipgan": SkipGenerator}[s.arch](s.resolution, s.z_dim, s.g_width, classes_g)
    d_arch = _AUTO_D[s.arch] if s.d_arch == "auto" else s.d_arch
    if d_arch not in D_ARCHS:
        raise ValueError(f"d_arch {d_arch!r}: expected one of {', '.join(D_ARCHS)}")
    if d_arch == "r3gan":
        if s.d_batchnorm or s.d_spectral_norm:
            raise ValueError("the r3gan discriminator has no normalisation (model.d_batchnorm=false, "
                             "d_spectral_norm=false)")
        if s.conditional == "aux":
            raise ValueError("the r3gan discriminator conditions by projection (model.conditional=projection or none)")
        return g, R3Discriminator(s.resolution, s.d_width, s.num_classes, s.conditional, s.max_width, s.blocks)
    if d_arch == "mlp":
        if s.conditional != "none":
            raise ValueError("the mlp discriminator is unconditional")
        return g, MLPDiscriminator(s.resolution, s.d_width)
    if d_arch == "resnet":
        if s.d_batchnorm:
            raise ValueError("the resnet discriminator has no BatchNorm (model.d_batchnorm=false)")
        d = ResNetDiscriminator(s.resolution, s.d_width, s.num_classes, s.conditional, s.d_spectral_norm)
        return g, d
    d = DCGANDiscriminator(s.resolution, s.d_width, s.num_classes, s.conditional, s.d_batchnorm, s.d_spectral_norm)
    return g, d
