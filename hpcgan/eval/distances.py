"""FID and KID from feature statistics, in float64."""

from __future__ import annotations

import math

import torch

from hpcgan.errors import UserError
from hpcgan.eval.feature_stats import FeatureStats


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """||μ1 - μ2||² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½), with the trace of the square root taken as the
    sum of square roots of the eigenvalues of Σ1 Σ2 (torchmetrics' method; no scipy sqrtm)."""
    a = (mu1 - mu2).square().sum()
    b = cov1.trace() + cov2.trace()
    c = torch.linalg.eigvals(cov1 @ cov2).sqrt().real.sum()
    return float(a + b - 2 * c)


def fid(real: FeatureStats, fake: FeatureStats) -> float:
    value = frechet_distance(real.mean(), real.cov(), fake.mean(), fake.cov())
    if not math.isfinite(value):
        raise UserError(
            f"FID is not finite with {real.n} real and {fake.n} generated samples of {real.dim} features; "
            "use more samples (thousands)"
        )
    return value


def kid(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: the unbiased MMD² with the cubic polynomial kernel
    k(x, y) = (xᵀy / d + 1)³, averaged over random subsets; returns (mean, std)."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise UserError(f"KID needs at least 2 real and 2 generated features; got {len(real)} and {len(fake)}")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=gen)[:m]].double()
        y = fake[torch.randperm(len(fake), generator=gen)[:m]].double()
        values.append(_mmd2_unbiased(x, y))
    v = torch.tensor(values, dtype=torch.float64)
    return float(v.mean()), float(v.std(unbiased=False))


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    d, m = x.shape[1], len(x)
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))

    def off_diagonal_mean(k: torch.Tensor) -> torch.Tensor:
        return (k.sum() - k.diagonal().sum()) / (m * (m - 1))

    return float(off_diagonal_mean(k_xx) + off_diagonal_mean(k_yy) - 2 * k_xy.mean())
