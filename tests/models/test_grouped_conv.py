"""hpcgan/models/grouped_conv.py: GroupedConv2d computes what nn.Conv2d computes, and its first and
second derivatives (the double backward of R1/R2) match PyTorch's own."""

import pytest
import torch
import torch.nn.functional as F

from hpcgan.models.grouped_conv import GroupedConv2d, _GroupedConv


def conv_pair(groups=4):
    """Our 8-channel 3x3 convolution and its parameters, to hand to F.conv2d as the reference."""
    torch.manual_seed(0)
    ours = GroupedConv2d(8, 8, 3, padding=1, groups=groups)
    return ours, (ours.weight, ours.bias)


@pytest.mark.parametrize("groups", [1, 2, 8])
def test_output_shape_and_values_match_conv2d(groups):
    conv, (w, b) = conv_pair(groups=groups)
    x = torch.randn(3, 8, 5, 6)
    out = conv(x)
    assert out.shape == (3, 8, 5, 6)  # stride 1, 'same' padding
    assert torch.allclose(out, F.conv2d(x, w, b, padding=1, groups=groups), atol=1e-5)


def test_first_derivatives_match_conv2d():
    conv, (w, b) = conv_pair()
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    upstream = torch.randn(2, 8, 4, 4)
    ours = torch.autograd.grad((conv(x) * upstream).sum(), (x, w, b))
    theirs = torch.autograd.grad((F.conv2d(x, w, b, padding=1, groups=4) * upstream).sum(), (x, w, b))
    for a, e in zip(ours, theirs, strict=True):
        assert torch.allclose(a, e, atol=1e-5)


def test_the_r1_style_double_backward_matches_conv2d():
    """Gradient w.r.t. the weights of |d out / d x|^2, as R1 takes it, through a nonlinearity."""
    conv, (w, b) = conv_pair()
    x = torch.randn(2, 8, 4, 4, requires_grad=True)

    def penalty_grads(forward):
        (gx,) = torch.autograd.grad(F.leaky_relu(forward(x), 0.2).pow(2).sum(), x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum(), (w, b, x), allow_unused=True)

    ours = penalty_grads(conv)
    theirs = penalty_grads(lambda v: F.conv2d(v, w, b, padding=1, groups=4))
    for a, e in zip(ours, theirs, strict=True):
        if e is None:
            assert a is None or a.abs().sum() == 0
        else:
            assert torch.allclose(a, e, atol=1e-4, rtol=1e-4)


def test_gradcheck_and_gradgradcheck_in_double():
    """Numerical first and second derivatives w.r.t. input, weight and bias, padding 1, 2 groups."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def apply(x, w, b):
        return _GroupedConv.apply(x, w, b, 1, 2)

    assert torch.autograd.gradcheck(apply, (x, w, b))
    assert torch.autograd.gradgradcheck(apply, (x, w, b))


def test_under_cpu_autocast_it_computes_in_bf16_and_returns_gradients_in_the_parameters_dtype():
    conv, (w, b) = conv_pair()
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
        expected = F.conv2d(x, w, b, padding=1, groups=4)
    assert out.dtype == torch.bfloat16 == expected.dtype
    assert torch.allclose(out.float(), expected.float(), atol=1e-2)
    out.float().sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == torch.float32
