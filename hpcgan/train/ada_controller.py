"""ADA's feedback loop: the augmentation probability p follows how sure D is about real images.

The overfitting heuristic is r_t = E[sign(D(real))] over the real images of `interval` steps on
all ranks (summed by the trainer's one per-step all-reduce, so every rank holds the same p). Every
`interval` steps p moves by sign(r_t - target) x (images in those steps) / (images for 0 -> 1):
up when D calls too many real images real (it is memorising them), down when it does not.

For the relativistic loss (rpgan) D's logits have no zero point: the loss only sees D(real_i) -
D(fake_i), so a constant shift of every logit changes nothing and sign(D(real)) measures nothing.
There the heuristic is E[sign(D(real_i) - D(fake_i))], the share of pairs D orders correctly mapped
to [-1, 1]: the same quantity for a D whose zero point sits between real and fake.
"""

from __future__ import annotations

from typing import Any


class AdaController:
    def __init__(self, target: float, interval: int, images_to_full: float, enabled: bool = True) -> None:
        self.target, self.interval, self.images_to_full = target, interval, images_to_full
        self.enabled = enabled  # off (train.ada=false): p stays 0
        self.p = 0.0
        self.signs = 0.0  # sum of the signs since the last adjustment, all ranks
        self.count = 0.0  # how many real images they came from
        self.r_t = 0.0  # the heuristic at the last adjustment

    def observe(self, sign_sum: float, count: float, step: int, images_per_step: int) -> None:
        """Add one step's (all-reduced) signs; adjust p after every `interval`-th step."""
        if not self.enabled:
            return
        self.signs += sign_sum
        self.count += count
        if step % self.interval == 0 and self.count > 0:
            self.r_t = self.signs / self.count
            direction = float(self.r_t > self.target) - float(self.r_t < self.target)  # sign: 0 on target
            adjust = direction * images_per_step * self.interval / self.images_to_full
            self.p = min(max(self.p + adjust, 0.0), 1.0)
            self.signs = self.count = 0.0

    def log_fields(self) -> dict[str, float]:
        return {"ada_p": self.p, "ada_rt": self.r_t} if self.enabled else {}

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "signs": self.signs, "count": self.count, "r_t": self.r_t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.signs, self.count = float(state["p"]), float(state["signs"]), float(state["count"])
        self.r_t = float(state.get("r_t", 0.0))
