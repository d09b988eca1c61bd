"""FLOP counting for `python -m hpcgan.bench train`: torch's FlopCounterMode, totals only."""

from __future__ import annotations

from torch.utils.flop_counter import FlopCounterMode


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker: that one's backward hooks break
    torch.autograd.grad, which the gradient penalty and R1 call. Totals are unchanged."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *args: object) -> None:
        pass


def flop_counter() -> FlopCounterMode:
    """torch's FlopCounterMode, counting totals only (see _GlobalOnly)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter
