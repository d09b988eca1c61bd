"""Streaming feature statistics for FID and KID, the same on one rank or many.

Each rank adds its features into float64 sums (Σx, ΣxᵀX, n), as torchmetrics and NVIDIA's
stylegan2-ada metrics do, so memory does not grow with the number of samples; `reduce()` all-reduces
the sums once. KID needs features, not moments: each rank keeps its first `keep` rows, and
`reduce()` gathers them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from hpcgan.atomic import atomic_open
from hpcgan.errors import UserError


class FeatureStats:
    def __init__(self, dim: int, keep: int = 0) -> None:
        self.dim, self.keep = dim, keep
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sum_outer = torch.zeros(dim, dim, dtype=torch.float64)
        self.n = 0
        self.kept: list[torch.Tensor] = []

    @property
    def kept_rows(self) -> int:
        return sum(len(k) for k in self.kept)

    def update(self, features: torch.Tensor) -> None:
        """Add a batch of features [B, dim] (any device and float dtype)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features of shape {tuple(features.shape)}: expected [B, {self.dim}]")
        f = features.detach().to("cpu", torch.float64)
        self.sum += f.sum(0)
        self.sum_outer += f.T @ f
        self.n += len(f)
        if self.kept_rows < self.keep:
            self.kept.append(f[: self.keep - self.kept_rows].clone())

    def reduce(self) -> FeatureStats:
        """All ranks' statistics combined (a collective: every rank must call it)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        world = dist.get_world_size()
        total = FeatureStats(self.dim, self.keep * world)
        packed = torch.cat([self.sum, self.sum_outer.flatten(), torch.tensor([float(self.n)], dtype=torch.float64)])
        dist.all_reduce(packed)
        total.sum, total.sum_outer = packed[: self.dim], packed[self.dim : -1].view(self.dim, self.dim)
        total.n = int(packed[-1].item())
        if self.keep:
            gathered: list[torch.Tensor | None] = [None] * world
            dist.all_gather_object(gathered, self.features())
            total.kept = [g for g in gathered if g is not None and len(g)]
        return total

    def features(self) -> torch.Tensor:
        return torch.cat(self.kept) if self.kept else torch.zeros(0, self.dim, dtype=torch.float64)

    def mean(self) -> torch.Tensor:
        self._need(2)
        return self.sum / self.n

    def cov(self) -> torch.Tensor:
        """The unbiased covariance, (ΣxᵀX - n μμᵀ) / (n - 1), as torchmetrics computes it."""
        self._need(2)
        mu = self.mean().unsqueeze(0)
        return (self.sum_outer - self.n * mu.T @ mu) / (self.n - 1)

    def _need(self, n: int) -> None:
        if self.n < n:
            raise UserError(f"{self.n} sample(s): FID needs at least {n} (and thousands for a stable value)")

    def save(self, path: Path) -> None:
        """Atomically, as .npz: the sums, the count and the kept features."""
        with atomic_open(Path(path), "wb") as handle:
            np.savez(handle, sum=self.sum.numpy(), sum_outer=self.sum_outer.numpy(), n=self.n,
                     kept=self.features().numpy(), keep=self.keep)  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> FeatureStats:
        with np.load(path) as data:
            stats = cls(int(data["sum"].shape[0]), int(data["keep"]))
            stats.sum, stats.sum_outer = torch.from_numpy(data["sum"]), torch.from_numpy(data["sum_outer"])
            stats.n = int(data["n"])
            kept = torch.from_numpy(data["kept"])
            stats.kept = [kept] if len(kept) else []
        return stats
