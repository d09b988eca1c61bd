"""Resampling by 2 with the [1, 2, 1] low-pass filter: interpolation up, blur-then-subsample down.

Learned transposed convolutions leave a checkerboard in generated images (each output pixel gets
a different number of kernel taps); a fixed low-pass filter treats every pixel alike. Up: every
input pixel is kept and a new one is placed between each pair, the mean of its two neighbours
(zero-insertion followed by [1, 2, 1] / 2 along each axis). Down: [1, 2, 1] / 4 along each axis,
then every second pixel. Edges repeat the border pixel, so the image does not darken at its rim.
"""

from __future__ import annotations

import torch


def _upsample_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    following = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim=dim)
    between = (x + following) * 0.5
    return torch.stack([x, between], dim=dim + 1).flatten(dim, dim + 1)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, 2H, 2W]."""
    return _upsample_axis(_upsample_axis(x, 2), 3)


def _downsample_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Output i = (x[2i-1] + 2 x[2i] + x[2i+1]) / 4, x[-1] repeating x[0]. Slices and adds, not a
    depthwise convolution: R1/R2 differentiate D twice, and the double backward of a depthwise
    convolution runs one small convolution per channel."""
    n = x.shape[dim]
    even = x.narrow(dim, 0, n).unflatten(dim, (n // 2, 2)).select(dim + 1, 0)  # x[2i]
    odd = x.unflatten(dim, (n // 2, 2)).select(dim + 1, 1)  # x[2i + 1]
    before = torch.cat([even.narrow(dim, 0, 1), odd.narrow(dim, 0, n // 2 - 1)], dim=dim)  # x[2i - 1]
    return (before + 2 * even + odd) * 0.25


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, H/2, W/2] (H and W even)."""
    return _downsample_axis(_downsample_axis(x, 2), 3)
