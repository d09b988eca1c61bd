"""hpcgan/models/ada_pipeline.py: ADA's transforms (tests/test_ada.py covers no-mirroring,
differentiability and p = 0 on one seed): p <= 0 is the identity, shape and dtype are kept, the
generator decides every draw and the draws do not depend on p, and each of the seven transforms is
applied to each image with probability p."""

import pytest
import torch

from hpcgan.models.ada_pipeline import ada_augment

TRANSFORMS = 7  # translation, scaling, rotation, brightness, contrast, gamma, noise


def images(n: int = 8, size: int = 16, dtype=torch.float32) -> torch.Tensor:
    torch.manual_seed(0)
    return (torch.rand(n, 1, size, size) * 2 - 1).to(dtype)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def unchanged(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per image: did every transform pass it by?"""
    return torch.isclose(out.float(), x.float(), atol=1e-5).flatten(1).all(dim=1)


@pytest.mark.parametrize("p", [0.0, -0.5])
def test_p_at_or_below_zero_is_the_identity_and_draws_nothing(p):
    x, g = images(), gen(0)
    state = g.get_state()
    assert ada_augment(x, p, g) is x
    assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_and_dtype_are_kept(dtype):
    x = images(dtype=dtype)
    out = ada_augment(x, 1.0, gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.isfinite(out.float()).all()


def test_same_seed_same_output_different_seed_different_output():
    x = images()
    a, b, c = ada_augment(x, 0.7, gen(3)), ada_augment(x, 0.7, gen(3)), ada_augment(x, 0.7, gen(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_the_draws_do_not_depend_on_p():
    x = images()
    low, high = gen(5), gen(5)
    ada_augment(x, 0.1, low)
    ada_augment(x, 0.9, high)
    assert torch.equal(low.get_state(), high.get_state())  # a resumed run stays in step whatever p was


def test_a_vanishing_p_leaves_every_image_as_it_was():
    x = images()
    assert torch.allclose(ada_augment(x, 1e-12, gen(0)), x, atol=1e-5)


def test_at_p_one_every_image_changes():
    x = images(n=32)
    assert not unchanged(ada_augment(x, 1.0, gen(0)), x).any()


def test_images_left_alone_at_a_higher_p_are_left_alone_at_a_lower_p():
    # An image passes untouched only if all its draws are >= p, which at p = 0.6 implies >= 0.3.
    x = images(n=256)
    at_low, at_high = unchanged(ada_augment(x, 0.3, gen(7)), x), unchanged(ada_augment(x, 0.6, gen(7)), x)
    assert at_high.any()  # so that the subset check below has something to check
    assert not (at_high & ~at_low).any()
    assert at_low.sum() > at_high.sum()


def test_each_transform_is_chosen_per_image_with_probability_p():
    p, n = 0.2, 1000
    x = images(n=n, size=8)
    share = unchanged(ada_augment(x, p, gen(0)), x).float().mean().item()
    expected = (1 - p) ** TRANSFORMS  # 0.21; binomial sd over 1000 images: 0.013
    assert abs(share - expected) < 5 * (expected * (1 - expected) / n) ** 0.5
