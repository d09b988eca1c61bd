"""Training schedules over the images D has seen (R3GAN's, as config fields): LR and the R1/R2
weight gamma decay on a cosine, Adam's beta2 warms up on a cosine, and the EMA generator's half-life
ramps up with the images seen (StyleGAN2-ADA's rule).

All are pure functions of (images seen, horizon). Both are in the checkpoint: the horizon is fixed
when a run starts (`train.schedule_kimg`, or the whole run: train.steps x the global batch x
optim.d_steps), so a resumed run continues every schedule exactly even if train.steps was raised.
"""

from __future__ import annotations

import math
from typing import Any


def cosine(start: float, end: float, progress: float) -> float:
    """`start` at progress 0, `end` at 1 and after, on half a cosine wave between."""
    t = min(max(progress, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * t))


class Schedules:
    def __init__(self, horizon_images: float) -> None:
        self.horizon_images = float(horizon_images)
        self.images = 0  # real images D has seen, all ranks together

    @property
    def progress(self) -> float:
        return self.images / self.horizon_images if self.horizon_images > 0 else 0.0

    def advance(self, images: int) -> None:
        self.images += images

    def factor(self, final_fraction: float) -> float:
        """1 at the start, `final_fraction` at the horizon (the LR's and gamma's decay)."""
        return cosine(1.0, final_fraction, self.progress)

    def beta2(self, start: float, end: float) -> float:
        """Adam's beta2, from `start` to `end` (start 0: `end` throughout)."""
        return cosine(start, end, self.progress) if start else end

    def ema_decay(self, half_life_kimg: float, rampup_ratio: float, global_batch: int) -> float:
        """Per-step decay of the EMA generator for a half-life in images, at most `rampup_ratio`
        of the images seen so far (so the average does not hold on to the first, noisy steps)."""
        half_life = half_life_kimg * 1000
        if rampup_ratio > 0:
            half_life = min(half_life, self.images * rampup_ratio)
        return 0.5 ** (global_batch / max(half_life, 1e-8))

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images, "horizon_images": self.horizon_images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images, self.horizon_images = int(state["images"]), float(state["horizon_images"])
