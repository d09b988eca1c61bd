"""What `python -m hpcgan.bench train` hands every loop process: the row it runs (Variant), the
settings all loops share, and the bench's config of a preset."""

from __future__ import annotations

from dataclasses import dataclass

from hpcgan.train.config import RunConfig, apply_overrides
from hpcgan.train.presets import preset


@dataclass(frozen=True)
class Variant:
    """One row: which loop, and the config overrides on top of the bench's base config."""

    name: str
    kind: str  # "ours" | "plain"
    overrides: tuple[str, ...] = ()
    compiled: bool = False  # plain loop only: G and D through torch.compile


@dataclass(frozen=True)
class Settings:
    gan: str
    base: tuple[str, ...]  # overrides every loop shares (batch size, resolution)
    data: str
    threads: int


def bench_config(gan: str, overrides: tuple[str, ...]) -> RunConfig:
    """The preset with the bench's overrides; checkpoints and sample grids off (not per-step costs)."""
    config = apply_overrides(preset(gan), list(overrides))
    config.train.sample_every, config.checkpoint.every = 0, 0
    return config
