"""Warnings a new user would not see in the curves: here, a discriminator that has won.

D's accuracy is logged per step as d_real_acc and d_fake_acc (the share of real images it calls
real, and of generated ones it calls fake). At 1.0 on both, D's output on G's images is saturated
and G's loss gradient carries almost no direction: the samples stop improving.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcgan.report.collect import RunData, number

RECENT = 10  # logged steps looked at: the end of the run, not one lucky batch
MIN_ROWS = 3  # fewer logged steps than this say nothing yet
SATURATED = 0.99  # batch accuracies averaged over ranks: 1.0 up to rounding


@dataclass(frozen=True)
class DWinning:
    steps: int  # logged steps looked at
    first: int  # their first and last step
    last: int
    real: float  # the lowest accuracy among them, on real and on fake images
    fake: float


def d_winning(run: RunData) -> DWinning | None:
    """D's accuracy at (about) 1.0 on real and fake images over each of the last RECENT logged steps."""
    rows = [(r["step"], number(r.get("d_real_acc")), number(r.get("d_fake_acc"))) for r in run.train]
    rows = [(step, real, fake) for step, real, fake in rows if real is not None and fake is not None][-RECENT:]
    if len(rows) < MIN_ROWS:
        return None
    real, fake = min(r for _, r, _ in rows), min(f for _, _, f in rows)
    if real < SATURATED or fake < SATURATED:
        return None
    return DWinning(len(rows), rows[0][0], rows[-1][0], real, fake)
