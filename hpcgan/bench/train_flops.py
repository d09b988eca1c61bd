"""FLOP counting for `python -m hpcgan.bench train`. The counter moved to hpcgan/train/step_flops.py,
where `hpcgan plan` (a lower layer than the benchmarks) uses it too; the bench imports it from here."""

from __future__ import annotations

from hpcgan.train.step_flops import flop_counter

__all__ = ["flop_counter"]
