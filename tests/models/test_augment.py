"""hpcgan/models/augment.py: the DiffAugment-style policies: an empty policy is the identity, each
documented policy exists and does what its name says within its documented range, shape and dtype are
kept, the caller's generator decides every draw, and jpeg refuses a tensor that needs gradients."""

import pytest
import torch

from hpcgan.models.augment import POLICIES, augment


def images(n: int = 4, size: int = 16, dtype=torch.float32) -> torch.Tensor:
    torch.manual_seed(0)
    return (torch.rand(n, 1, size, size) * 1.6 - 0.8).to(dtype)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_documented_policies_exist():
    assert set(POLICIES) == {"brightness", "contrast", "translation", "jpeg"}
    assert "flip" not in POLICIES  # chest anatomy is lateralised


@pytest.mark.parametrize("policy", ["", " ", ",", " , "])
def test_an_empty_policy_is_the_identity(policy):
    x = images()
    assert torch.equal(augment(x, policy, gen(0)), x)


@pytest.mark.parametrize("policy", [*POLICIES, "brightness,contrast,translation"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_policy_keeps_shape_and_dtype_and_changes_the_images(policy, dtype):
    x = images(dtype=dtype)
    out = augment(x, policy, gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert not torch.allclose(out, x)


@pytest.mark.parametrize("policy", ["brightness", "contrast"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_images_stay_half_precision(policy, dtype):
    assert augment(images(dtype=dtype), policy, gen(0)).dtype == dtype


@pytest.mark.parametrize("policy", [*POLICIES, "brightness,translation,jpeg"])
def test_same_seed_same_output_different_seed_different_output(policy):
    x = images()
    a, b, c = augment(x, policy, gen(1)), augment(x, policy, gen(1)), augment(x, policy, gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_brightness_adds_one_offset_per_image_in_minus_half_to_half():
    x = images(n=32)
    delta = augment(x, "brightness", gen(0)) - x
    per_image = delta[:, :, :1, :1]
    assert torch.allclose(delta, per_image.expand_as(delta), atol=1e-6)
    assert per_image.min() >= -0.5 and per_image.max() < 0.5
    assert per_image.std() > 0.1  # different images, different offsets


def test_contrast_scales_about_each_images_mean_by_half_to_one_and_a_half():
    x = images(n=32)
    out = augment(x, "contrast", gen(0))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out.mean(dim=(1, 2, 3), keepdim=True), mean, atol=1e-5)
    factor = (out - mean).flatten(1).norm(dim=1) / (x - mean).flatten(1).norm(dim=1)
    assert factor.min() >= 0.5 - 1e-5 and factor.max() < 1.5 + 1e-5


def test_translation_by_zero_is_the_identity():
    x = images()
    assert torch.allclose(augment(x, "translation", gen(0), translation=0.0), x, atol=1e-5)


def test_translation_moves_a_dot_at_most_the_fraction_of_the_side_and_never_mirrors_it():
    size, fraction = 32, 0.125
    x = torch.full((16, 1, size, size), -1.0)
    x[:, :, 8, 6] = 1.0  # upper left, off the centre lines
    out = augment(x, "translation", gen(0), translation=fraction)
    flat = out.flatten(1).argmax(dim=1)
    rows, cols = flat // size, flat % size
    limit = fraction * size + 1  # bilinear interpolation can move the peak by one more pixel
    assert ((rows - 8).abs() <= limit).all() and ((cols - 6).abs() <= limit).all()
    assert ((rows != 8) | (cols != 6)).any()  # something moved
    # Padding is black (-1), not a wrap-around: pixels never rise above the input's maximum.
    assert out.max() <= 1 + 1e-6 and out.min() >= -1 - 1e-6


def test_jpeg_output_is_8_bit_and_close_to_a_smooth_input():
    ramp = torch.linspace(-0.8, 0.8, 16)
    x = (ramp.view(16, 1) * ramp.view(1, 16)).expand(4, 1, 16, 16)  # smooth: what JPEG keeps well
    out = augment(x, "jpeg", gen(0))
    levels = (out + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # decoded 8-bit pixels
    assert (out - x).abs().mean() < 0.03


def test_jpeg_at_top_quality_keeps_a_constant_image():
    x = torch.full((2, 1, 16, 16), 127 / 127.5 - 1)  # exactly an 8-bit level
    out = augment(x, "jpeg", gen(0), jpeg_quality=(100, 100))
    assert torch.allclose(out, x, atol=1e-6)


def test_jpeg_quality_range_is_drawn_from_the_generator():
    x = images(n=8)
    low = augment(x, "jpeg", gen(0), jpeg_quality=(5, 5))
    high = augment(x, "jpeg", gen(0), jpeg_quality=(95, 95))
    assert (low - x).abs().mean() > (high - x).abs().mean()


def test_jpeg_refuses_a_tensor_that_needs_gradients():
    x = images().requires_grad_()
    with pytest.raises(ValueError, match="not differentiable"):
        augment(x, "jpeg", gen(0))


def test_the_differentiable_policies_pass_gradients():
    x = images().requires_grad_()
    augment(x, "brightness,contrast,translation", gen(0)).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="cutout"):
        augment(images(), "brightness,cutout", gen(0))
