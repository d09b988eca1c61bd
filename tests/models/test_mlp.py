"""hpcgan/models/mlp.py: the fully connected G and D: shapes, G's tanh range, conditioning."""

import torch

from hpcgan.models.mlp import MLPDiscriminator, MLPGenerator


def test_generator_shape_and_tanh_range():
    torch.manual_seed(0)
    g = MLPGenerator(16, z_dim=8, width=4)
    images = g(torch.randn(3, 8) * 100)  # large z saturates the tanh, never past it
    assert images.shape == (3, 1, 16, 16)
    assert images.min() >= -1 and images.max() <= 1


def test_conditional_generator_labels_change_the_image_for_the_same_z():
    torch.manual_seed(0)
    g = MLPGenerator(8, z_dim=4, width=4, num_classes=3).eval()
    z = torch.randn(2, 4)
    a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)
    assert torch.equal(a, g(z, torch.tensor([0, 0])))  # same (z, label): same image


def test_unconditional_generator_has_no_embedding():
    assert MLPGenerator(8, z_dim=4, width=4).embed is None
    assert MLPGenerator(8, z_dim=4, width=4, num_classes=2).net[0].in_features == 8  # z and the embedding


def test_discriminator_returns_one_logit_per_image_and_no_class_logits():
    torch.manual_seed(0)
    d = MLPDiscriminator(16, width=4)
    logits, extra = d(torch.randn(5, 1, 16, 16))
    assert logits.shape == (5,) and extra is None


def test_discriminator_scores_each_image_on_its_own():
    torch.manual_seed(0)
    d = MLPDiscriminator(8, width=4)
    x = torch.randn(4, 1, 8, 8)
    together, _ = d(x)
    alone = torch.cat([d(x[i : i + 1])[0] for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-6)
