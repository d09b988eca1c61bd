"""The EMA generator: an exponential moving average of G's weights, which draws the sample grids,
the training-time FID and (in the checkpoint) every exported sample. Per-step decay with a ramp-up
(train.ema, train.ema_rampup), or a half-life in images (train.ema_kimg) capped by the images seen."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from hpcgan.models.ema import update_ema
from hpcgan.train.config import TrainConfig
from hpcgan.train.schedules import Schedules


class EmaGenerator:
    def __init__(self, config: TrainConfig, g: nn.Module, device: torch.device) -> None:
        self.config = config
        # train.ema=0: no EMA generator; G itself draws, and the checkpoint's "ema" is empty.
        self.module = copy.deepcopy(g).eval().requires_grad_(False).to(device) if config.ema else None

    def drawing(self, g: nn.Module) -> nn.Module:
        """The network that draws samples: the EMA generator, or G when the run keeps none."""
        return self.module if self.module is not None else g

    def update(self, g: nn.Module, step: int, schedules: Schedules, images_per_step: int) -> None:
        if self.module is None:
            return
        c = self.config
        if c.ema_kimg:
            update_ema(self.module, g, schedules.ema_decay(c.ema_kimg, c.ema_rampup_ratio, images_per_step), step)
        else:
            update_ema(self.module, g, c.ema, step, c.ema_rampup)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict() if self.module is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.module is not None:
            self.module.load_state_dict(state)
