"""hpcgan/models/resnet.py: the SN-GAN ResNet discriminator: shapes with each head, spectral norm on
every layer by default, no normalisation layer (each sample's logit is its own)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hpcgan.models.resnet import DownBlock, ResNetDiscriminator


@pytest.mark.parametrize(("conditional", "aux_shape"), [("none", None), ("projection", None), ("aux", (2, 3))])
def test_shapes_per_head(conditional, aux_shape):
    torch.manual_seed(0)
    d = ResNetDiscriminator(32, width=4, num_classes=3, conditional=conditional)
    logits, extra = d(torch.randn(2, 1, 32, 32), torch.tensor([0, 2]))
    assert logits.shape == (2,)
    assert (extra.shape if extra is not None else None) == aux_shape


def test_one_block_per_halving_down_to_4px_with_capped_widths():
    d = ResNetDiscriminator(64, width=4, max_width=8)
    assert [b.conv1.out_channels for b in d.blocks] == [4, 8, 8, 8]
    h = d.blocks(torch.randn(1, 1, 64, 64))
    assert h.shape == (1, 8, 4, 4)


def test_spectral_norm_on_every_layer_by_default_and_off_on_request():
    layers = (nn.Conv2d, nn.Linear, nn.Embedding)
    sn = ResNetDiscriminator(32, width=4, num_classes=2, conditional="projection")
    assert all(hasattr(m, "weight_orig") for m in sn.modules() if isinstance(m, layers))
    plain = ResNetDiscriminator(32, width=4, num_classes=2, conditional="projection", spectral=False)
    assert not any(hasattr(m, "weight_orig") for m in plain.modules())


def test_no_normalisation_layers_so_each_sample_is_scored_alone():
    torch.manual_seed(0)
    d = ResNetDiscriminator(32, width=4).eval()  # eval: spectral norm's power iteration stands still
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase | nn.GroupNorm) for m in d.modules())
    x = torch.randn(3, 1, 32, 32)
    together, _ = d(x)
    alone = torch.cat([d(x[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_down_block_is_residual_conv_path_plus_pooled_shortcut():
    torch.manual_seed(0)
    block = DownBlock(2, 3, lambda m: m)
    x = torch.randn(1, 2, 8, 8)
    h = block.conv2(F.relu(block.conv1(F.relu(x))))
    expected = F.avg_pool2d(h, 2) + block.shortcut(F.avg_pool2d(x, 2))
    assert torch.allclose(block(x), expected, atol=1e-6)
    first = DownBlock(2, 3, lambda m: m, first=True)
    first.load_state_dict(block.state_dict())
    negative = -x.abs()  # the first block sees the image itself, not relu(image)
    assert not torch.allclose(first(negative), block(negative))
