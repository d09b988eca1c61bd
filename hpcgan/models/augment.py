"""Augmentations for radiographs: brightness, contrast and small translations, differentiable
(DiffAugment applies them to real and fake alike). Never a horizontal flip: chest anatomy is
lateralised. All randomness comes from the caller's generator, so a resumed run repeats it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("brightness", "contrast", "translation")


def augment(x: torch.Tensor, policy: str, generator: torch.Generator, translation: float = 0.125) -> torch.Tensor:
    """`policy`: comma-separated names from POLICIES (empty: identity). `x` in [-1, 1]."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        n = len(x)
        if name == "brightness":
            x = x + (torch.rand(n, 1, 1, 1, generator=generator, device=x.device) - 0.5)
        elif name == "contrast":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (torch.rand(n, 1, 1, 1, generator=generator, device=x.device) + 0.5) + mean
        elif name == "translation":
            x = _translate(x, translation, generator)
        else:
            raise ValueError(f"augment {name!r}: expected one of {', '.join(POLICIES)}")
    return x


def _translate(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to `fraction` of its size, zero-padded, via an affine grid."""
    shift = (torch.rand(len(x), 2, generator=generator, device=x.device) * 2 - 1) * fraction * 2
    theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
