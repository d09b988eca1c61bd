"""What the schedules (hpcgan/train/schedules.py, over the images seen) set at each step: the
optimizers' LRs and Adam's beta2, and the factor on the R1/R2 weight."""

from __future__ import annotations

from typing import Any

import torch

from hpcgan.train.config import RunConfig
from hpcgan.train.schedules import Schedules


class StepSchedules:
    def __init__(self, config: RunConfig, schedules: Schedules) -> None:
        self.optim, self.loss, self.steps, self.schedules = config.optim, config.loss, config.train.steps, schedules

    def set_optimizers(self, step: int, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                       guard_lr_scale: float) -> None:  # fmt: skip
        """LRs (cosine decay, fine-tune phase, the divergence guard's scale) and Adam's beta2 for `step`."""
        o = self.optim
        start = o.finetune_from * self.steps if o.finetune_from < 1 else o.finetune_from
        scale = o.finetune_scale if o.finetune_from and step >= start else 1.0
        scale *= guard_lr_scale * self.schedules.factor(o.lr_decay)
        beta2 = self.schedules.beta2(o.beta2_start, o.beta2)
        for opt, lr in ((opt_g, o.lr_g), (opt_d, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale
                if o.name == "adam":
                    group["betas"] = (o.beta1, beta2)

    def gamma_scale(self, step: int) -> float:
        """R1/R2 weight factor of `step`: the cosine decay, and lazy regularisation (StyleGAN2):
        with loss.penalty_every=k the penalties run on every k-th step only, k times as strong."""
        every = self.loss.penalty_every
        if step % every:
            return 0.0
        return self.schedules.factor(self.loss.gamma_decay) * every

    def log_fields(self) -> dict[str, Any]:
        decaying = self.loss.gamma_decay != 1 and (self.loss.r1_gamma or self.loss.r2_gamma)
        return {"gamma_scale": self.schedules.factor(self.loss.gamma_decay)} if decaying else {}
