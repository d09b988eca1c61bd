"""Diversity as the mean MS-SSIM of random pairs of images (Odena et al. 2017, AC-GAN): 1 means
identical pairs (a collapsed generator), lower means more varied. Compared with the same measure
on real pairs of the training set, which is what "varied enough" means for these images."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

DEFAULT_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # the 5-scale weights of Wang et al. 2003
KERNEL = 11


def scales_for(size: int) -> int:
    """How many of the 5 scales fit an image of `size` px: torchmetrics needs size ≥ 10·(k-1)², and
    the coarsest scale must still hold the 11 px window (64 px: 3 scales; 256 px: 5)."""
    k = 5
    while k > 1 and (size < (KERNEL - 1) * (k - 1) ** 2 or size // 2 ** (k - 1) < KERNEL):
        k -= 1
    return k


def mean_ms_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean MS-SSIM between uint8 images a[i] and b[i] ([N, 1, S, S] each). Small images use the
    first `scales_for(S)` scales with their weights renormalised to sum to 1."""
    k = scales_for(a.shape[-1])
    betas = tuple(beta / sum(DEFAULT_BETAS[:k]) for beta in DEFAULT_BETAS[:k])
    value = ms_ssim(a.float() / 255, b.float() / 255, data_range=1.0, betas=betas, kernel_size=KERNEL)
    return float(value)
