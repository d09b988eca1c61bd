"""Feature extractors for FID/KID. Each is (an nn.Module: uint8 [B, 1, S, S] -> float [B, D], an
identity string that names it and its weights: the real-statistics cache key).

- `random`: a seeded, randomly initialised conv net, for tests and offline demos. Its FIDs compare
  runs with each other only, never with published values (hence the identity "random-not-comparable").
- Any nn.Module through the Python API (`custom(module, name)`).
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from hpcgan.errors import UserError

EXTRACTORS = ("random",)


class RandomFeatures(nn.Module):
    """Four stride-2 convs on a 64 px resize, global average pooling: 128 features."""

    num_features = 128

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        widths = [1, 32, 64, 128, 128]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, 2, 1) for a, b in zip(widths[:-1], widths[1:], strict=True))
        with torch.no_grad():
            for conv in self.convs:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2 / conv.weight[0].numel()) ** 0.5)
                conv.bias.zero_()
        self.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1
        x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return x.mean(dim=(2, 3))


def build_extractor(name: str, seed: int = 0) -> tuple[nn.Module, str]:
    if name == "random":
        return RandomFeatures(seed), f"random-not-comparable-seed{seed}"
    raise UserError(f"--extractor {name}: expected one of {', '.join(EXTRACTORS)}")


def custom(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    """Any module with `num_features`; the identity hashes its weights, so the cache follows them."""
    h = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        h.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return module, f"{name}-{h.hexdigest()[:12]}"
