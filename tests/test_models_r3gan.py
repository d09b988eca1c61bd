"""The R3GAN networks, the relativistic loss and its penalties, the [1, 2, 1] resampling: shapes at every
resolution, losses against closed forms and hand-written autograd, fix-up initialisation."""

import math

import pytest
import torch

from hpcgan.models.build import ModelSpec, build_networks
from hpcgan.models.losses import d_loss, g_loss, zero_centred_penalty
from hpcgan.models.r3gan import R3Discriminator, R3Generator, stage_widths
from hpcgan.models.resample import downsample2x, upsample2x


@pytest.mark.parametrize("resolution", [32, 64, 128, 256, 512, 1024])
@pytest.mark.parametrize("conditional", ["none", "projection"])
def test_shapes_at_every_resolution(resolution, conditional):
    spec = ModelSpec("r3gan", resolution, 16, 4, 4, conditional, 3, max_width=32, blocks=1)
    g, d = build_networks(spec)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        images = g(torch.randn(2, 16), labels)
        logits, extra = d(images, labels)
    assert images.shape == (2, 1, resolution, resolution)
    assert logits.shape == (2,) and extra is None
    assert torch.isfinite(images).all() and torch.isfinite(logits).all()


def test_conditioning_reaches_both_networks():
    torch.manual_seed(0)
    g, d = R3Generator(32, 8, 8, num_classes=2, max_width=32, blocks=1), R3Discriminator(
        32, 8, 2, "projection", max_width=32, blocks=1
    )
    z = torch.randn(4, 8)
    with torch.no_grad():
        a, b = g(z, torch.zeros(4, dtype=torch.long)), g(z, torch.ones(4, dtype=torch.long))
        assert not torch.allclose(a, b)  # the class changes the image
        assert not torch.allclose(d(a, torch.zeros(4, dtype=torch.long))[0], d(a, torch.ones(4, dtype=torch.long))[0])


def test_widths_double_towards_4px_and_respect_the_cap():
    assert stage_widths(64, 32, 128) == [128, 128, 128, 64, 32]  # 4, 8, 16, 32, 64 px
    assert stage_widths(256, 32, 512) == [512, 512, 512, 256, 128, 64, 32]


def test_fixup_blocks_start_as_the_identity():
    g = R3Generator(32, 8, 8, max_width=32, blocks=2)
    block = g.stages[1][0]
    x = torch.randn(3, block.expand.in_channels, 8, 8)
    assert torch.equal(block(x), x)
    assert block.reduce.weight.abs().sum() == 0  # the last layer of each block starts at zero
    # He init scaled by blocks ** -1/4: 2 blocks x 4 stages = 8 blocks.
    fan_in = block.expand.weight[0].numel()
    expected = math.sqrt(2 / 1.04) / math.sqrt(fan_in) * 8 ** -0.25
    assert abs(block.expand.weight.std().item() - expected) / expected < 0.15


def test_no_normalisation_layers_anywhere():
    g, d = build_networks(ModelSpec("r3gan", 64, 16, 8, 8, "projection", 2, max_width=32, blocks=1))
    norms = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)
    assert not [m for m in [*g.modules(), *d.modules()] if isinstance(m, norms)]
    assert not [name for name, _ in d.named_parameters() if "weight_orig" in name]  # no spectral norm


def test_rpgan_against_its_formula():
    real = torch.tensor([2.0, -1.0, 0.5, 3.0])
    fake = torch.tensor([1.0, 0.0, 0.5, -2.0])
    expected_d = sum(math.log1p(math.exp(-(r - f))) for r, f in zip(real.tolist(), fake.tolist(), strict=True)) / 4
    expected_g = sum(math.log1p(math.exp(-(f - r))) for r, f in zip(real.tolist(), fake.tolist(), strict=True)) / 4
    assert d_loss("rpgan", real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert g_loss("rpgan", fake, real).item() == pytest.approx(expected_g, rel=1e-6)
    # Relativistic: shifting every logit by a constant changes nothing.
    assert d_loss("rpgan", real + 7, fake + 7).item() == pytest.approx(expected_d, rel=1e-6)
    with pytest.raises(ValueError, match="pass real"):
        g_loss("rpgan", fake)


def test_r1_and_r2_against_hand_written_autograd():
    torch.manual_seed(0)
    d = R3Discriminator(32, 8, max_width=32, blocks=1)
    for p in d.parameters():  # away from the identity init, so the gradient is not a linear map's
        p.data.add_(torch.randn_like(p) * 0.05)
    x = torch.randn(5, 1, 32, 32, requires_grad=True)
    logits, _ = d(x)
    penalty = zero_centred_penalty(logits, x)
    by_hand = []
    for i in range(5):  # each sample's gradient on its own
        xi = x[i : i + 1].detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(d(xi)[0].sum(), xi)
        by_hand.append(grad.pow(2).sum())
    assert penalty.item() == pytest.approx(torch.stack(by_hand).mean().item(), rel=1e-5)
    penalty.backward()  # create_graph: the penalty itself trains D (its weights; biases do not move a gradient)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in d.named_parameters() if n.endswith("weight"))


def test_zero_centred_penalty_of_a_linear_d_is_its_weight_norm():
    w = torch.randn(1, 1, 8, 8)
    x = torch.randn(3, 1, 8, 8, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)
    assert zero_centred_penalty(logits, x).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-6)


def test_resampling_is_interpolation_without_checkerboard_or_dark_edges():
    flat = torch.full((1, 3, 8, 8), 0.7)
    assert torch.allclose(upsample2x(flat), torch.full((1, 3, 16, 16), 0.7))
    assert torch.allclose(downsample2x(flat), torch.full((1, 3, 4, 4), 0.7))
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    up = upsample2x(ramp)
    assert up[0, 0, 0].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0]  # new pixels: the mean of neighbours
    x = torch.randn(2, 4, 16, 16)
    assert downsample2x(upsample2x(x)).shape == x.shape
