"""Augmentations for radiographs: brightness, contrast and small translations, differentiable
(DiffAugment applies them to real and fake alike), and JPEG re-compression at a random quality,
for real images only (it is not differentiable). Never a horizontal flip: chest anatomy is
lateralised. All randomness comes from the caller's generator, so a resumed run repeats it."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

POLICIES = ("brightness", "contrast", "translation", "jpeg")


def augment(
    x: torch.Tensor,
    policy: str,
    generator: torch.Generator,
    translation: float = 0.125,
    jpeg_quality: tuple[int, int] = (40, 95),
) -> torch.Tensor:
    """`policy`: comma-separated names from POLICIES (empty: identity). `x` in [-1, 1]."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        n = len(x)
        if name == "brightness":
            x = x + (torch.rand(n, 1, 1, 1, generator=generator, device=x.device) - 0.5).to(x.dtype)
        elif name == "contrast":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (torch.rand(n, 1, 1, 1, generator=generator, device=x.device) + 0.5).to(x.dtype) + mean
        elif name == "translation":
            x = _translate(x, translation, generator)
        elif name == "jpeg":
            if x.requires_grad:
                raise ValueError("augment jpeg is not differentiable: use it for real images only, not DiffAugment")
            x = _jpeg(x, jpeg_quality, generator)
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


def _jpeg(x: torch.Tensor, quality: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Re-encode each image as JPEG at a quality drawn from [lo, hi]: the compression artefacts
    of clinical exports, which a model should not take for anatomy."""
    lo, hi = quality
    qualities = torch.randint(lo, hi + 1, (len(x),), generator=generator, device=x.device).tolist()
    pixels = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    out = np.empty_like(pixels)
    for i, q in enumerate(qualities):
        buf = io.BytesIO()
        Image.fromarray(pixels[i, 0]).save(buf, "JPEG", quality=q)
        out[i, 0] = np.asarray(Image.open(buf))
    return torch.from_numpy(out).to(x.device, x.dtype) / 127.5 - 1
