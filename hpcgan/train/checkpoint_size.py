"""What one checkpoint of a configuration weighs on disk, before any run exists: G, D and the EMA
generator in fp32 and the optimizer's moments per parameter; the rest of a checkpoint (RNG states,
the loader's position, the config) is a few kB. `hpcgan doctor` checks free space with it, `hpcgan
plan` the write time; tests/train/test_checkpoint_size.py holds it against a checkpoint the trainer saved."""

from __future__ import annotations

import torch

from hpcgan.train.config import RunConfig, networks_for

FP32_BYTES = 4
MOMENTS = {"adam": 2, "rmsprop": 1}  # exp_avg and exp_avg_sq; square_avg (config_schema.OptimName)


def parameter_counts(config: RunConfig) -> tuple[int, int]:
    """(G's parameters, D's), from networks built on the meta device: no memory, even at 512 px."""
    with torch.device("meta"):
        g, d = networks_for(config, 2 if config.model.conditional != "none" else 0)
    return sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters())


def checkpoint_bytes(config: RunConfig, g_params: int, d_params: int) -> int:
    """Bytes of one checkpoint: each network and its optimizer's moments, plus the EMA G (train.ema > 0)."""
    ema = g_params if config.train.ema else 0
    return FP32_BYTES * ((1 + MOMENTS[config.optim.name]) * (g_params + d_params) + ema)
