"""An exponential moving average of the generator, with a ramp-up so early steps are not frozen in."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int, rampup_steps: int = 0) -> None:
    """ema = d * ema + (1 - d) * model, with d ramped from 0 over `rampup_steps` (d = min(decay,
    (1 + step) / (10 + step)) style ramps make the average track the fast early changes)."""
    if rampup_steps > 0:
        decay = min(decay, (1 + step) / (rampup_steps + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)
