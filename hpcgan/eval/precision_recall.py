"""Improved precision and recall of generative models (Kynkäänniemi et al. 2019): each real
feature gets a ball out to its k-th nearest real neighbour; precision is the share of generated
features inside some real ball (fidelity), recall the share of real features inside some generated
ball (coverage: a collapsed generator has high precision and low recall)."""

from __future__ import annotations

import torch

from hpcgan.errors import UserError


def _kth_neighbour_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    # k + 1: each point's nearest neighbour in its own set is itself, at distance 0.
    return torch.cat([torch.cdist(x[s : s + chunk], x).kthvalue(k + 1, dim=1).values for s in range(0, len(x), chunk)])


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> float:
    inside = [(torch.cdist(points[s : s + chunk], centres) <= radii).any(1) for s in range(0, len(points), chunk)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """(precision, recall) of `fake` [M, D] against `real` [N, D] features."""
    if min(len(real), len(fake)) <= k:
        raise UserError(f"precision/recall with k={k} needs more than {k} real and generated features")
    real, fake = real.double(), fake.double()
    precision = _inside_any_ball(fake, real, _kth_neighbour_radius(real, k, chunk), chunk)
    recall = _inside_any_ball(real, fake, _kth_neighbour_radius(fake, k, chunk), chunk)
    return precision, recall
