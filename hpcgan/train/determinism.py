"""train.deterministic: kernels that give the same bits for the same inputs, so that on a GPU a
resumed run repeats the uninterrupted one exactly (on CPU, at a fixed thread count, our ops already do).

Three switches, all needed on CUDA: torch's deterministic algorithms; cuDNN without autotuning (a
benchmark may pick another convolution algorithm in the resumed process); and cuBLAS's fixed
workspace, which cuBLAS reads once, at the process's first matrix product, so it is set before
any (CUBLAS_WORKSPACE_CONFIG=:4096:8, the value NVIDIA and torch document). Ops with no
deterministic CUDA kernel (grid_sample's and bilinear interpolation's backward: DiffAugment's and
ADA's translation, skipgan's image skips) warn instead of failing: a run still trains, and the
warning names what keeps it from repeating exactly.
"""

from __future__ import annotations

import os

import torch

CUBLAS_WORKSPACE = ":4096:8"


def set_deterministic(on: bool) -> None:
    """Turn the three switches on (`on`), or leave torch's defaults alone."""
    if not on:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # a user's own value wins
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
