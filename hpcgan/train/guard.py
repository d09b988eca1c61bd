"""The divergence guard: after a non-finite loss or gradient, roll back to the last good
checkpoint and change course by policy (lower the LR, draw new random numbers, or both); give up
with a clear error after `retries` rollbacks without committing a new checkpoint in between.

All ranks see the same verdict: the trainer all-reduces the per-rank "non-finite" flag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hpcgan.errors import UserError

POLICIES = ("lr", "reseed", "both")


@dataclass
class GuardState:
    """Saved in every checkpoint, so a resumed run keeps the LR scale and seed offset."""

    lr_scale: float = 1.0  # multiplies both learning rates
    reseeds: int = 0  # mixed into every per-step seed once nonzero
    tries: int = 0  # rollbacks since the last committed checkpoint
    rollbacks: int = 0  # over the whole run


class DivergenceGuard:
    def __init__(self, policy: str, retries: int, lr_factor: float) -> None:
        if policy not in POLICIES:
            raise UserError(f"guard.policy={policy}: expected one of {', '.join(POLICIES)}")
        if retries < 0 or not 0 < lr_factor <= 1:
            raise UserError("guard.retries must be >= 0 and guard.lr_factor in (0, 1]")
        self.policy, self.retries, self.lr_factor = policy, retries, lr_factor
        self.state = GuardState()

    def diverged(self, step: int, rollback_to: int) -> str:
        """Count a divergence at `step` (the rollback goes to `rollback_to`); returns what changed,
        or raises once the retries are used up."""
        s = self.state
        if s.tries >= self.retries:
            raise UserError(
                f"training diverged at step {step}: non-finite loss or gradient after {s.tries} rollback(s) "
                f"to step {rollback_to} (guard.retries={self.retries}); lower optim.lr_g/lr_d or change the preset"
            )
        s.tries += 1
        s.rollbacks += 1
        changes = []
        if self.policy in ("lr", "both"):
            s.lr_scale *= self.lr_factor
            changes.append(f"LR x{s.lr_scale:g}")
        if self.policy in ("reseed", "both"):
            s.reseeds += 1
            changes.append(f"reseed #{s.reseeds}")
        return ", ".join(changes)

    def committed(self) -> None:
        """A checkpoint was committed: the run made progress past the trouble."""
        self.state.tries = 0

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = GuardState(**state)
