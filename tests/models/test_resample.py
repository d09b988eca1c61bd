"""hpcgan/models/resample.py: the [1, 2, 1] resampling by 2 against a one-dimensional reference
written from the docstring, applied separably; constants stay constant, sizes halve and double."""

import pytest
import torch
import torch.nn.functional as F

from hpcgan.models.resample import downsample2x, upsample2x


def up_1d(v: list[float]) -> list[float]:
    """Every sample kept, the mean of each pair placed after it, the last one repeating the border."""
    out = []
    for i, a in enumerate(v):
        b = v[min(i + 1, len(v) - 1)]
        out += [a, (a + b) / 2]
    return out


def down_1d(v: list[float]) -> list[float]:
    """(v[2i-1] + 2 v[2i] + v[2i+1]) / 4, v[-1] repeating v[0]."""
    return [(v[max(2 * i - 1, 0)] + 2 * v[2 * i] + v[2 * i + 1]) / 4 for i in range(len(v) // 2)]


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (2, 3, 8, 6), (1, 2, 2, 2)])
def test_sizes_double_and_halve(shape):
    x = torch.randn(shape)
    b, c, h, w = shape
    assert upsample2x(x).shape == (b, c, 2 * h, 2 * w)
    assert downsample2x(x).shape == (b, c, h // 2, w // 2)


@pytest.mark.parametrize("value", [-1.0, 0.0, 0.37])
def test_a_constant_image_stays_constant_at_the_edges_too(value):
    x = torch.full((2, 2, 6, 10), value)
    assert torch.allclose(upsample2x(x), torch.full((2, 2, 12, 20), value))
    assert torch.allclose(downsample2x(x), torch.full((2, 2, 3, 5), value))


def test_upsampling_keeps_every_input_pixel():
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(upsample2x(x)[:, :, ::2, ::2], x)


def test_upsampling_a_row_matches_the_1d_reference():
    row = [0.0, 4.0, -2.0, 1.0]
    x = torch.tensor(row).view(1, 1, 1, 4)
    assert upsample2x(x)[0, 0, 0].tolist() == pytest.approx(up_1d(row))


def test_downsampling_a_ramp_is_its_even_samples_except_the_repeated_first_edge():
    x = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 2, 8)
    # Interior: (2i - 1 + 4i + 2i + 1) / 4 = 2i; at i = 0: (0 + 0 + 1) / 4.
    assert downsample2x(x)[0, 0, 0].tolist() == pytest.approx([0.25, 2.0, 4.0, 6.0])


def test_both_resamplings_are_separable_outer_products_of_the_1d_reference():
    a, b = torch.randn(6).tolist(), torch.randn(4).tolist()
    image = torch.outer(torch.tensor(a), torch.tensor(b)).view(1, 1, 6, 4)
    expected_up = torch.outer(torch.tensor(up_1d(a)), torch.tensor(up_1d(b)))
    expected_down = torch.outer(torch.tensor(down_1d(a)), torch.tensor(down_1d(b)))
    assert torch.allclose(upsample2x(image)[0, 0], expected_up, atol=1e-6)
    assert torch.allclose(downsample2x(image)[0, 0], expected_down, atol=1e-6)


def test_downsampling_equals_a_strided_121_convolution_with_the_first_edge_repeated():
    x = torch.randn(2, 3, 8, 8)
    k1 = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel = torch.outer(k1, k1).expand(3, 1, 3, 3)
    padded = F.pad(x, (1, 0, 1, 0), mode="replicate")  # only x[-1] is read, never x[n]
    expected = F.conv2d(padded, kernel, stride=2, groups=3)
    assert torch.allclose(downsample2x(x), expected, atol=1e-6)


def test_upsampling_a_linear_ramp_gives_the_finer_ramp_up_to_the_repeated_last_pixel():
    # New pixels are the means of their neighbours, which on a ramp lie on the ramp.
    x = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 2, 16)
    up = upsample2x(x)[0, 0, 0]
    assert torch.allclose(up[:-1], torch.arange(31.0) / 2)


def test_resampling_is_differentiable_twice():
    x = torch.randn(1, 1, 8, 8, requires_grad=True)
    y = downsample2x(upsample2x(x) ** 2).sum()
    (grad,) = torch.autograd.grad(y, x, create_graph=True)
    grad.pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
