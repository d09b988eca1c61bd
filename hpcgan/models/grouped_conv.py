"""A grouped convolution whose gradient is itself cheap to differentiate.

R1 and R2 differentiate D's gradient with respect to its input (a double backward). PyTorch's own
double backward of a grouped convolution loops over the groups, one small convolution each: with
the R3GAN block's 16-channel groups that made a D step with R1 about 8x slower on CPU than the
forward and backward together. Here the backward is written with conv_transpose2d (input gradient)
and conv2d (weight gradient), ordinary differentiable ops whose own backward handles groups in one
call, so the double backward costs about as much as a backward.

Under autocast the inputs are cast once in forward, as F.conv2d would, and the backward works in
that dtype; gradients come back in the dtypes of the tensors they belong to.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class _GroupedConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int, groups: int):
        kind = x.device.type
        dtypes = (x.dtype, weight.dtype, bias.dtype)
        if torch.is_autocast_enabled(kind):
            dtype = torch.get_autocast_dtype(kind)
            x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.groups, ctx.dtypes = padding, groups, dtypes
        with torch.autocast(kind, enabled=False):
            return F.conv2d(x, weight, bias, padding=padding, groups=groups)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.to(x.dtype)
        grad_x = grad_w = grad_b = None
        with torch.autocast(x.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                grad_x = F.conv_transpose2d(grad, weight, padding=ctx.padding, groups=ctx.groups).to(ctx.dtypes[0])
            if ctx.needs_input_grad[1]:
                grad_w = _weight_grad(x, grad, weight.shape, ctx.padding, ctx.groups).to(ctx.dtypes[1])
            if ctx.needs_input_grad[2]:
                grad_b = grad.sum(dim=(0, 2, 3)).to(ctx.dtypes[2])
        return grad_x, grad_w, grad_b, None, None


def _weight_grad(x: torch.Tensor, grad: torch.Tensor, shape: torch.Size, padding: int, groups: int) -> torch.Tensor:
    """d(loss)/d(weight): the weight half of PyTorch's own convolution backward (one grouped call).
    R1/R2 never differentiate it again: their second derivative goes through conv_transpose2d."""
    _, grad_w, _ = torch.ops.aten.convolution_backward(
        grad, x, torch.empty(shape, dtype=x.dtype, device=x.device).expand(shape), None, [1, 1], [padding, padding],
        [1, 1], False, [0, 0], groups, [False, True, False],
    )  # fmt: skip
    return grad_w


class GroupedConv2d(nn.Conv2d):
    """nn.Conv2d (stride 1, 'same' padding, bias) with the double backward above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GroupedConv.apply(x, self.weight, self.bias, self.padding[0], self.groups)
