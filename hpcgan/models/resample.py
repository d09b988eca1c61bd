"""Resampling by 2 with the [1, 2, 1] low-pass filter: interpolation up, blur-then-subsample down.

Learned transposed convolutions leave a checkerboard in generated images (each output pixel gets
a different number of kernel taps); a fixed low-pass filter treats every pixel alike. Up: every
input pixel is kept and a new one is placed between each pair, the mean of its two neighbours
(zero-insertion followed by [1, 2, 1] / 2 along each axis). Down: [1, 2, 1] / 4 along each axis,
then every second pixel. Edges repeat the border pixel, so the image does not darken at its rim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _upsample_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    following = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim=dim)
    between = (x + following) * 0.5
    return torch.stack([x, between], dim=dim + 1).flatten(dim, dim + 1)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, 2H, 2W]."""
    return _upsample_axis(_upsample_axis(x, 2), 3)


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, H/2, W/2] (H and W even)."""
    channels = x.shape[1]
    taps = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    kernel = (taps[:, None] * taps[None, :] / 16).expand(channels, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, stride=2, groups=channels)
