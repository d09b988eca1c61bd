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


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a CPU tensor over the ranks, on the device the process group's backend needs (NCCL
    reduces CUDA tensors only: a training job on GPUs runs this under its NCCL group)."""
    if dist.get_backend() == "nccl":
        reduced = tensor.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(reduced)
        return reduced.cpu()
    dist.all_reduce(tensor)
    return tensor


class FeatureStats:
    def __init__(self, dim: int, keep: int = 0) -> None:
        self.dim, self.keep = dim, keep
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sum_outer = torch.zeros(dim, dim, dtype=torch.float64)
        self.n = 0
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []  # (global row numbers, rows)

    def update(self, features: torch.Tensor, first_row: int | None = None) -> None:
        """Add a batch of features [B, dim] (any device and float dtype). `first_row`: the global
        number of its first row (generated image index); None: this rank's rows interleaved with the
        other ranks' (row j of rank r is j * world + r)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features of shape {tuple(features.shape)}: expected [B, {self.dim}]")
        f = features.detach().to("cpu", torch.float64)
        if self.keep:
            if first_row is None:
                rank, world = _rank_world()
                numbers = torch.arange(self.n, self.n + len(f)) * world + rank
            else:
                numbers = torch.arange(first_row, first_row + len(f))
            wanted = numbers < self.keep
            if wanted.any():
                self.kept.append((numbers[wanted], f[wanted].clone()))
        self.sum += f.sum(0)
        self.sum_outer += f.T @ f
        self.n += len(f)

    def reduce(self) -> FeatureStats:
        """All ranks' statistics combined (a collective: every rank must call it)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        world = dist.get_world_size()
        total = FeatureStats(self.dim, self.keep)
        packed = torch.cat([self.sum, self.sum_outer.flatten(), torch.tensor([float(self.n)], dtype=torch.float64)])
        packed = all_reduce_sum(packed)
        total.sum, total.sum_outer = packed[: self.dim], packed[self.dim : -1].view(self.dim, self.dim)
        total.n = int(packed[-1].item())
        if self.keep:
            gathered: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * world
            dist.all_gather_object(gathered, self._kept_sorted())
            total.kept = [g for g in gathered if g is not None and len(g[0])]
            total.kept = [total._kept_sorted()]
        return total

    def _kept_sorted(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.kept:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, self.dim, dtype=torch.float64)
        numbers, rows = torch.cat([k[0] for k in self.kept]), torch.cat([k[1] for k in self.kept])
        order = torch.argsort(numbers, stable=True)
        return numbers[order], rows[order]

    def features(self) -> torch.Tensor:
        """The kept rows in global row order."""
        return self._kept_sorted()[1]

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
            numbers, rows = self._kept_sorted()
            np.savez(handle, sum=self.sum.numpy(), sum_outer=self.sum_outer.numpy(), n=self.n,
                     kept=rows.numpy(), kept_numbers=numbers.numpy(), keep=self.keep)  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> FeatureStats:
        with np.load(path) as data:
            stats = cls(int(data["sum"].shape[0]), int(data["keep"]))
            stats.sum, stats.sum_outer = torch.from_numpy(data["sum"]), torch.from_numpy(data["sum_outer"])
            stats.n = int(data["n"])
            kept = torch.from_numpy(data["kept"])
            numbers = torch.from_numpy(data["kept_numbers"]) if "kept_numbers" in data else torch.arange(len(kept))
            stats.kept = [(numbers, kept)] if len(kept) else []
        return stats
