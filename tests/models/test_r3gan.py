"""hpcgan/models/r3gan.py, beyond tests/test_models_r3gan.py (shapes, widths, fix-up identity blocks,
no normalisation, losses): at initialisation both networks are linear (every block the identity, every
transition linear), eval determinism, per-sample D, the depthwise 4x4 basis, the grouped 3x3's groups
and the conditioning options."""

import math

import pytest
import torch
import torch.nn.functional as F

from hpcgan.models.losses import zero_centred_penalty
from hpcgan.models.r3gan import GROUP_CHANNELS, DepthwiseBasis, R3Discriminator, R3Generator


def small_g(**kwargs) -> R3Generator:
    return R3Generator(32, 8, 8, max_width=32, blocks=1, **kwargs)


def small_d(**kwargs) -> R3Discriminator:
    return R3Discriminator(32, 8, max_width=32, blocks=1, **kwargs)


def test_an_initial_generator_is_linear_in_z():
    torch.manual_seed(0)
    g = small_g()
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(g(2 * z1 - 3 * z2), 2 * g(z1) - 3 * g(z2), atol=1e-4)


def test_an_initial_discriminator_is_affine_so_its_r1_is_the_same_everywhere():
    torch.manual_seed(0)
    d = small_d()
    x = torch.randn(4, 1, 32, 32, requires_grad=True)
    logits, _ = d(x)
    (grad,) = torch.autograd.grad(logits.sum(), x)
    assert torch.allclose(grad, grad[:1].expand_as(grad), atol=1e-5)  # one gradient for every input
    y = (torch.randn(4, 1, 32, 32) * 3).requires_grad_()
    assert zero_centred_penalty(d(x)[0], x).item() == pytest.approx(zero_centred_penalty(d(y)[0], y).item(), rel=1e-4)


def test_trained_away_from_init_the_generator_is_no_longer_linear():
    torch.manual_seed(0)
    g = small_g()
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
        assert not torch.allclose(g(z1 + z2), g(z1) + g(z2), atol=1e-3)  # the test above can fail


def test_same_z_and_label_give_the_same_image():
    torch.manual_seed(0)
    g = small_g(num_classes=3).eval()
    z, labels = torch.randn(3, 8), torch.tensor([0, 1, 2])
    with torch.no_grad():
        assert torch.equal(g(z, labels), g(z, labels))


def test_discriminator_scores_each_image_alone():
    torch.manual_seed(0)
    d = small_d(num_classes=2, conditional="projection")
    for p in d.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    x, labels = torch.randn(3, 1, 32, 32), torch.tensor([0, 1, 1])
    with torch.no_grad():
        together = d(x, labels)[0]
        alone = torch.cat([d(x[i : i + 1], labels[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_depthwise_basis_equals_a_4x4_depthwise_convolution():
    torch.manual_seed(0)
    basis = DepthwiseBasis(5)
    basis.bias.data.normal_()
    x = torch.randn(2, 5, 4, 4)
    expected = F.conv2d(x, basis.weight.unsqueeze(1), basis.bias, groups=5).flatten(1)
    assert torch.allclose(basis(x), expected, atol=1e-5)


def test_the_grouped_3x3_has_16_channels_per_group():
    g = R3Generator(32, 8, 16, max_width=64, blocks=1)
    for stage in g.stages:
        for block in stage:
            hidden = block.spatial.in_channels
            assert block.spatial.groups == max(1, hidden // GROUP_CHANNELS)
            assert hidden == 2 * block.expand.in_channels


def test_generator_output_is_linear_not_squashed():
    torch.manual_seed(0)
    g = small_g()
    with torch.no_grad():
        images = g(torch.randn(4, 8) * 50)  # a linear output layer: large z, large pixels
    assert images.abs().max() > 1


def test_multiply_and_concat_conditioning():
    assert small_g(num_classes=3).to_basis.in_features == 8  # multiply is the default
    assert small_g(num_classes=3, conditioning="concat").to_basis.in_features == 16
    torch.manual_seed(0)
    g = small_g(num_classes=3, conditioning="concat")
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert not torch.allclose(g(z, torch.tensor([0, 0])), g(z, torch.tensor([1, 1])))


def test_multiply_conditioning_feeds_z_times_the_class_embedding():
    torch.manual_seed(0)
    g = small_g(num_classes=3)
    plain = small_g()
    plain.load_state_dict({k: v for k, v in g.state_dict().items() if not k.startswith("embed")})
    z, labels = torch.randn(2, 8), torch.tensor([2, 0])
    with torch.no_grad():
        assert torch.allclose(g(z, labels), plain(z * g.embed(labels)), atol=1e-5)


def test_projection_logit_is_the_scaled_dot_product_with_the_class_embedding():
    torch.manual_seed(0)
    d = small_d(num_classes=2, conditional="projection")
    x = torch.randn(3, 1, 32, 32)
    features = []
    d.out.register_forward_hook(lambda module, args, out: features.append(out))
    labels = torch.tensor([1, 0, 1])
    with torch.no_grad():
        logits, _ = d(x, labels)
    h = features[0]
    expected = (h * d.embed.weight[labels]).sum(1) / math.sqrt(h.shape[1])
    assert torch.allclose(logits, expected, atol=1e-6)


def test_without_classes_projection_is_unconditional_and_aux_is_refused():
    d = small_d(num_classes=0, conditional="projection")
    assert d.embed is None and d.out.out_features == 1
    with pytest.raises(ValueError, match="projection"):
        small_d(num_classes=2, conditional="aux")
