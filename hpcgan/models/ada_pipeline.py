"""The transforms of adaptive discriminator augmentation (ADA; Karras et al., NeurIPS 2020), chosen
for radiographs: each is applied to each image with probability p, to every image D sees (real and
generated, in both steps), and each is differentiable, so G learns through them.

- geometric, as one affine resampling per image: integer translation (up to 1/8 of the side),
  isotropic scaling (log2-normal, sd 0.2) and rotation (uniform, at most 10 degrees);
- intensity: brightness (added, sd 0.2), contrast (log2-normal factor, sd 0.5), gamma
  (log2-normal exponent, sd 0.3) and mild Gaussian noise (sd |N(0, 0.05)|).

Never a flip, a 90-degree rotation or anything else that moves anatomy across the midline: chest
anatomy is lateralised (the heart is on the left), and a mirrored radiograph is not a radiograph.
Borders repeat the edge pixel rather than reflecting the image. With p below about 0.8 the
augmentations do not "leak": G cannot satisfy D by producing augmented-looking images, because D
also sees un-augmented real images with probability (1 - p) per transform.

All randomness comes from the caller's generator, so a resumed run repeats it exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_TRANSLATE = 0.125  # of the image side
SCALE_STD = 0.2  # log2 of the scale factor
MAX_ROTATE_DEG = 10.0
BRIGHTNESS_STD = 0.2  # in [-1, 1] pixel units
CONTRAST_STD = 0.5  # log2 of the contrast factor
GAMMA_STD = 0.3  # log2 of the gamma exponent
NOISE_STD = 0.05  # the scale of each image's noise sd, in [-1, 1] pixel units


def ada_augment(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """`x`: images in [-1, 1] (generated ones may overshoot), [B, 1, S, S]. The draws do not depend
    on p, so the same generator state gives the same choices at any p."""
    if p <= 0:
        return x
    n, size, device = len(x), x.shape[-1], x.device

    def draw(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=device)

    def chosen() -> torch.Tensor:
        return (draw(n) < p).float()

    # Geometric: output pixel -> input pixel, in affine_grid's [-1, 1] coordinates.
    shift_px = torch.round((draw(n, 2) * 2 - 1) * MAX_TRANSLATE * size) * chosen()[:, None]
    scale = torch.exp2(normal(n) * SCALE_STD * chosen())
    angle = (draw(n) * 2 - 1) * math.radians(MAX_ROTATE_DEG) * chosen()
    if bool((shift_px != 0).any() or (scale != 1).any() or (angle != 0).any()):
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift_px[:, 0] * 2 / size], 1),
                             torch.stack([sin, cos, shift_px[:, 1] * 2 / size], 1)], 1)  # fmt: skip
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    shape = (n, 1, 1, 1)
    x = x + (normal(n) * BRIGHTNESS_STD * chosen()).view(shape).to(x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * torch.exp2(normal(n) * CONTRAST_STD * chosen()).view(shape).to(x.dtype) + mean
    exponent = torch.exp2(normal(n) * GAMMA_STD * chosen()).view(shape).to(x.dtype)
    unit = (x + 1) / 2
    inside = unit.clamp(1e-3, 1)
    # x^gamma inside [0, 1]; outside it the pixel keeps its overshoot, so the gradient never vanishes.
    x = (unit + (inside**exponent - inside)) * 2 - 1
    sigma = (normal(n).abs() * NOISE_STD * chosen()).view(shape).to(x.dtype)
    return x + normal(*x.shape).to(x.dtype) * sigma
