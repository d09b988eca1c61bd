"""hpcgan/models/build.py: the classes each arch / d_arch combination builds, the options that reach
them, and the combinations it refuses (ValueError here; hpcgan/train/config.py turns it into a
UserError for the user)."""

import pytest
import torch
from torch import nn

from hpcgan.models.bigan import BiGANGenerator, JointDiscriminator
from hpcgan.models.build import ARCHS, D_ARCHS, ModelSpec, build_networks
from hpcgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from hpcgan.models.mlp import MLPDiscriminator, MLPGenerator
from hpcgan.models.r3gan import R3Discriminator, R3Generator
from hpcgan.models.resnet import ResNetDiscriminator
from hpcgan.models.skipgan import SkipGenerator


def spec(arch: str, **kwargs) -> ModelSpec:
    return ModelSpec(arch, 32, 8, 4, 4, max_width=16, blocks=1, **kwargs)


@pytest.mark.parametrize(
    ("arch", "g_class", "d_class"),
    [
        ("mlp", MLPGenerator, MLPDiscriminator),
        ("dcgan", DCGANGenerator, DCGANDiscriminator),
        ("skipgan", SkipGenerator, ResNetDiscriminator),
        ("bigan", BiGANGenerator, JointDiscriminator),
        ("r3gan", R3Generator, R3Discriminator),
    ],
)
def test_auto_picks_each_familys_own_discriminator(arch, g_class, d_class):
    g, d = build_networks(spec(arch))
    assert type(g) is g_class and type(d) is d_class


def test_every_arch_is_covered():
    assert set(ARCHS) == {"mlp", "dcgan", "skipgan", "bigan", "r3gan"}
    assert set(D_ARCHS) == {"auto", "mlp", "dcgan", "resnet", "r3gan"}


@pytest.mark.parametrize(
    ("arch", "d_arch", "d_class"),
    [
        ("dcgan", "resnet", ResNetDiscriminator),
        ("dcgan", "r3gan", R3Discriminator),
        ("dcgan", "mlp", MLPDiscriminator),
        ("skipgan", "dcgan", DCGANDiscriminator),
        ("r3gan", "resnet", ResNetDiscriminator),
        ("mlp", "dcgan", DCGANDiscriminator),
    ],
)
def test_d_arch_overrides_the_familys_discriminator(arch, d_arch, d_class):
    g, d = build_networks(spec(arch, d_arch=d_arch))
    assert type(d) is d_class
    assert type(g) is type(build_networks(spec(arch))[0])  # G does not change


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "skipgan", "bigan", "r3gan"])
def test_built_networks_run_at_the_spec_resolution(arch):
    torch.manual_seed(0)
    g, d = build_networks(spec(arch))
    z = torch.randn(2, 8)
    with torch.no_grad():
        images = g(z)
        logits, _ = d(images, None, z) if arch == "bigan" else d(images)
    assert images.shape == (2, 1, 32, 32) and logits.shape == (2,)


@pytest.mark.parametrize("arch", ["dcgan", "skipgan", "r3gan"])
def test_conditional_specs_give_the_generator_a_class_embedding(arch):
    g, d = build_networks(spec(arch, conditional="projection", num_classes=3))
    assert g.embed.num_embeddings == 3
    assert build_networks(spec(arch, num_classes=3))[0].embed is None  # conditional=none ignores the classes
    logits, _ = d(torch.randn(2, 1, 32, 32), torch.tensor([0, 2]))
    assert logits.shape == (2,)


def test_aux_conditioning_gives_class_logits():
    _, d = build_networks(spec("dcgan", conditional="aux", num_classes=3))
    _, classes = d(torch.randn(2, 1, 32, 32), torch.tensor([0, 2]))
    assert classes.shape == (2, 3)


def test_d_batchnorm_and_spectral_norm_reach_the_dcgan_discriminator():
    _, plain = build_networks(spec("dcgan"))
    _, normed = build_networks(spec("dcgan", d_batchnorm=True, d_spectral_norm=True))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in normed.modules())
    assert any(n.endswith("weight_orig") for n, _ in normed.named_parameters())


def test_d_spectral_norm_reaches_the_resnet_discriminator():
    _, d = build_networks(spec("skipgan"))
    assert not any(n.endswith("weight_orig") for n, _ in d.named_parameters())
    _, d = build_networks(spec("skipgan", d_spectral_norm=True))
    assert any(n.endswith("weight_orig") for n, _ in d.named_parameters())


def test_g_conditioning_reaches_the_dcgan_generator():
    g, _ = build_networks(spec("dcgan", conditional="projection", num_classes=3, g_conditioning="multiply"))
    assert g.multiply and g.project[0].in_features == 8


def test_r3gan_options_reach_both_networks():
    g, d = build_networks(ModelSpec("r3gan", 32, 8, 4, 4, max_width=8, blocks=3))
    assert all(len(stage) == 3 for stage in [*g.stages, *d.stages])
    assert max(m.out_channels for m in g.modules() if isinstance(m, nn.Conv2d)) <= 2 * 8  # hidden = 2 x max


@pytest.mark.parametrize(
    ("arch", "kwargs", "fragment"),
    [
        ("stylegan", {}, "stylegan"),
        ("mlp", {"conditional": "projection", "num_classes": 2}, "unconditional"),
        ("bigan", {"conditional": "aux", "num_classes": 2}, "unconditional"),
        ("bigan", {"d_arch": "dcgan"}, "joint D"),
        ("bigan", {"d_batchnorm": True}, "joint D"),
        ("r3gan", {"conditional": "aux", "num_classes": 2}, "projection"),
        ("dcgan", {"d_arch": "r3gan", "d_batchnorm": True}, "no normalisation"),
        ("dcgan", {"d_arch": "r3gan", "d_spectral_norm": True}, "no normalisation"),
        ("dcgan", {"d_arch": "r3gan", "conditional": "aux", "num_classes": 2}, "projection"),
        ("dcgan", {"d_arch": "mlp", "conditional": "projection", "num_classes": 2}, "unconditional"),
        ("skipgan", {"d_batchnorm": True}, "BatchNorm"),
        ("dcgan", {"d_arch": "patchgan"}, "patchgan"),
    ],
)
def test_bad_combinations_are_refused_with_a_message_naming_the_problem(arch, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        build_networks(spec(arch, **kwargs))
