"""hpcgan/models/dcgan.py: levels per resolution, G's shapes, tanh range and both conditionings, D's
shapes with each head, BatchNorm and spectral norm as asked."""

import pytest
import torch
from torch import nn

from hpcgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, levels_for


@pytest.mark.parametrize(("resolution", "levels"), [(32, 3), (64, 4), (512, 7), (1024, 8)])
def test_levels_are_the_halvings_down_to_4px(resolution, levels):
    assert levels_for(resolution) == levels
    assert resolution // 2**levels == 4


@pytest.mark.parametrize("resolution", [8, 16, 48, 100, 2049])
def test_other_resolutions_are_refused(resolution):
    with pytest.raises(ValueError, match=str(resolution)):
        levels_for(resolution)


def test_resolutions_above_1024_are_refused():
    with pytest.raises(ValueError, match="2048"):
        levels_for(2048)


@pytest.mark.parametrize("resolution", [32, 64])
def test_generator_shape_and_tanh_range(resolution):
    torch.manual_seed(0)
    g = DCGANGenerator(resolution, z_dim=8, width=4)
    images = g(torch.randn(3, 8) * 10)
    assert images.shape == (3, 1, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1


def test_generator_widths_halve_per_level_from_the_cap():
    g = DCGANGenerator(64, z_dim=8, width=4, max_width=16)  # 4 levels: 4 * 8 = 32 capped to 16, 16, 8, 4
    convs = [m for m in g.blocks if isinstance(m, nn.ConvTranspose2d)]
    assert [c.in_channels for c in convs] == [16, 16, 8, 4]
    assert convs[-1].out_channels == 1


@pytest.mark.parametrize("conditioning", ["concat", "multiply"])
def test_conditional_generator_label_changes_the_image_and_eval_is_deterministic(conditioning):
    torch.manual_seed(0)
    g = DCGANGenerator(32, z_dim=8, width=4, num_classes=3, conditioning=conditioning).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([2, 2]))
        again = g(z, torch.tensor([0, 0]))
    assert not torch.allclose(a, b)
    assert torch.equal(a, again)


def test_concat_doubles_the_input_and_multiply_keeps_it():
    concat = DCGANGenerator(32, z_dim=8, width=4, num_classes=3, conditioning="concat")
    multiply = DCGANGenerator(32, z_dim=8, width=4, num_classes=3, conditioning="multiply")
    assert concat.project[0].in_features == 16 and multiply.project[0].in_features == 8


def test_multiply_conditioning_is_z_times_the_class_embedding():
    torch.manual_seed(0)
    g = DCGANGenerator(32, z_dim=8, width=4, num_classes=3, conditioning="multiply").eval()
    z, labels = torch.randn(2, 8), torch.tensor([1, 2])
    unconditional = DCGANGenerator(32, z_dim=8, width=4).eval()
    unconditional.load_state_dict({k: v for k, v in g.state_dict().items() if not k.startswith("embed")})
    with torch.no_grad():
        assert torch.allclose(g(z, labels), unconditional(z * g.embed(labels)), atol=1e-6)


def test_unknown_conditioning_is_refused():
    with pytest.raises(ValueError, match="add"):
        DCGANGenerator(32, z_dim=8, width=4, num_classes=2, conditioning="add")


@pytest.mark.parametrize(("conditional", "aux_shape"), [("none", None), ("projection", None), ("aux", (3, 2))])
def test_discriminator_shapes_per_head(conditional, aux_shape):
    torch.manual_seed(0)
    d = DCGANDiscriminator(32, width=4, num_classes=2, conditional=conditional)
    logits, extra = d(torch.randn(3, 1, 32, 32), torch.tensor([0, 1, 1]))
    assert logits.shape == (3,)
    assert (extra.shape if extra is not None else None) == aux_shape


def test_projection_discriminator_logit_depends_on_the_label():
    torch.manual_seed(0)
    d = DCGANDiscriminator(32, width=4, num_classes=2, conditional="projection").eval()
    x = torch.randn(3, 1, 32, 32)
    a, _ = d(x, torch.zeros(3, dtype=torch.long))
    b, _ = d(x, torch.ones(3, dtype=torch.long))
    assert not torch.allclose(a, b)


def test_discriminator_batchnorm_and_spectral_norm_as_asked():
    plain = DCGANDiscriminator(32, width=4, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert not any(n.endswith("weight_orig") for n, _ in plain.named_parameters())
    normed = DCGANDiscriminator(32, width=4, batchnorm=True, spectral=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in normed.modules()) == 2  # every conv after the first
    convs = [m for m in normed.modules() if isinstance(m, nn.Conv2d)]
    assert all(hasattr(c, "weight_orig") for c in convs)


def test_discriminator_without_batchnorm_scores_each_image_on_its_own():
    torch.manual_seed(0)
    d = DCGANDiscriminator(32, width=4, batchnorm=False)
    x = torch.randn(3, 1, 32, 32)
    together, _ = d(x)
    alone = torch.cat([d(x[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)
