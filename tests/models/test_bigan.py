"""hpcgan/models/bigan.py: G and E in one module (generate; generate and encode), and the joint D on
(x, z) pairs, which refuses an image without its z; no BatchNorm in E or D, so samples stay apart."""

import pytest
import torch
from torch import nn

from hpcgan.models.bigan import BiGANGenerator, Encoder, JointDiscriminator


def test_forward_without_real_generates_only():
    torch.manual_seed(0)
    g = BiGANGenerator(32, z_dim=8, width=4, encoder_width=4)
    fake = g(torch.randn(3, 8))
    assert isinstance(fake, torch.Tensor) and fake.shape == (3, 1, 32, 32)
    assert fake.min() >= -1 and fake.max() <= 1  # the DCGAN generator's tanh


def test_forward_with_real_also_encodes_it():
    torch.manual_seed(0)
    g = BiGANGenerator(32, z_dim=8, width=4, encoder_width=4)
    real = torch.randn(5, 1, 32, 32)
    fake, encoded = g(torch.randn(3, 8), None, real)
    assert fake.shape == (3, 1, 32, 32) and encoded.shape == (5, 8)
    assert torch.allclose(encoded, g.encoder(real))
    assert g.num_classes == 0


def test_one_forward_with_real_reaches_every_parameter():
    torch.manual_seed(0)
    g = BiGANGenerator(32, z_dim=8, width=4, encoder_width=4)
    fake, encoded = g(torch.randn(2, 8), None, torch.randn(2, 1, 32, 32))
    (fake.sum() + encoded.sum()).backward()
    assert all(p.grad is not None for p in g.parameters())  # what DDP needs


def test_joint_discriminator_scores_pairs_and_needs_z():
    torch.manual_seed(0)
    d = JointDiscriminator(32, z_dim=8, width=4, joint=16)
    x, z = torch.randn(3, 1, 32, 32), torch.randn(3, 8)
    logits, extra = d(x, None, z)
    assert logits.shape == (3,) and extra is None
    assert not torch.allclose(logits, d(x, None, torch.randn(3, 8))[0])  # z matters
    with pytest.raises(ValueError, match="pass z"):
        d(x)


def test_encoder_and_discriminator_score_each_sample_alone():
    torch.manual_seed(0)
    e, d = Encoder(32, 8, 4), JointDiscriminator(32, z_dim=8, width=4, joint=16)
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in [*e.modules(), *d.modules()])
    x, z = torch.randn(3, 1, 32, 32), torch.randn(3, 8)
    assert torch.allclose(e(x), torch.cat([e(x[i : i + 1]) for i in range(3)]), atol=1e-6)
    together = d(x, None, z)[0]
    alone = torch.cat([d(x[i : i + 1], None, z[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)
