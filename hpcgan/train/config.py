"""The run configuration as the rest of hpcgan uses it: the RunConfig, `key=value` overrides, the
check of a whole config before anything starts, and the networks it describes.

The keys themselves (types, defaults, one-line meanings) are declared in config_schema.py; the
generic machinery over them (walking, parsing, the choice check) is in config_keys.py. Imports run
one way: config -> deepspeed_config -> config_schema -> config_keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

from hpcgan.errors import UserError
from hpcgan.eval.inception import find_weights
from hpcgan.models.build import ModelSpec, build_networks
from hpcgan.train.config_keys import apply_overrides, check_choices, set_field
from hpcgan.train.config_schema import (
    CheckpointConfig,
    EvalConfig,
    GuardConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)
from hpcgan.train.deepspeed_config import check_strategy

__all__ = [
    "RANGES", "CheckpointConfig", "EvalConfig", "GuardConfig", "LossConfig", "ModelConfig", "OptimConfig", "RunConfig",
    "TrainConfig", "apply_overrides", "check", "networks_for", "set_field",
]  # fmt: skip


def networks_for(config: RunConfig, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """G and D (in that order) as the config describes them, for a shard set with `num_classes`."""
    m = config.model
    spec = ModelSpec(
        m.arch, m.resolution, m.z_dim, m.g_width, m.d_width, m.conditional, num_classes, m.d_arch, m.d_batchnorm,
        m.d_spectral_norm, max_width=m.max_width, blocks=m.blocks, g_conditioning=m.g_conditioning,
    )  # fmt: skip
    try:
        return build_networks(spec)
    except ValueError as exc:
        raise UserError(f"--gan {config.gan}: {exc}") from None


def check(config: RunConfig) -> None:
    """Refuse values that would only fail later, deep inside a step, with a one-line error."""
    c = config
    check_choices(c)
    for key, (ok, expected) in RANGES.items():
        value = _get(c, key)
        finite = not isinstance(value, float) or math.isfinite(value)
        if not (finite and ok(value)):
            raise UserError(f"{key}={value}: expected {expected}")
    if c.eval.every and c.eval.n < 4:
        raise UserError(f"eval.n={c.eval.n}: expected at least 4 generated images (precision/recall's k-NN; "
                        "thousands for a stable FID)")  # fmt: skip
    check_strategy(c)
    if c.eval.every and c.eval.extractor == "inception":
        try:  # missing weights fail now, not at the first evaluation
            find_weights(c.eval.weights or None)
        except UserError as exc:
            raise UserError(f"eval.extractor=inception (weights file: eval.weights=FILE): {exc}") from None


def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= low), (f"an integer >= {low}" if isinstance(low, int) else f"a finite number >= {low}")


_POSITIVE = ((lambda v: v > 0), "a finite number > 0")
_FRACTION = ((lambda v: 0 <= v < 1), "a value in [0, 1)")
# Every numeric key's accepted range, checked before anything starts (train, submit, sweeps).
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": _at_least(0),
    "model.resolution": ((lambda v: v in (32, 64, 128, 256, 512, 1024)), "a power of two from 32 to 1024"),
    **{f"model.{k}": _at_least(1) for k in ("z_dim", "g_width", "d_width", "max_width", "blocks")},
    **{f"loss.{k}": _at_least(0.0) for k in ("gp_weight", "r1_gamma", "r2_gamma", "aux_weight")},
    "loss.gamma_decay": ((lambda v: v > 0), "a fraction > 0 of the starting gamma"),
    "loss.penalty_every": _at_least(1),
    "loss.label_smoothing": ((lambda v: 0 <= v < 0.5), "a value in [0, 0.5)"),
    "loss.label_noise": ((lambda v: 0 <= v <= 0.5), "a probability in [0, 0.5]"),
    "optim.lr_g": _POSITIVE, "optim.lr_d": _POSITIVE,
    "optim.beta1": _FRACTION, "optim.beta2": _FRACTION,
    "optim.beta2_start": ((lambda v: 0 <= v < 1), "0 (off) or a beta2 in (0, 1)"),
    "optim.d_steps": _at_least(1), "optim.g_steps": _at_least(1),
    "optim.weight_clip": ((lambda v: v >= 0), "a clip value >= 0 (0: off)"),
    "optim.grad_clip": ((lambda v: v >= 0), "a maximum gradient norm >= 0 (0: off)"),
    "optim.finetune_from": ((lambda v: v >= 0), "a step, or a fraction of train.steps below 1"),
    "optim.finetune_scale": _POSITIVE,
    "optim.lr_decay": ((lambda v: v > 0), "a fraction > 0 of the starting LR"),
    "train.steps": _at_least(1), "train.batch_size": _at_least(1),
    "train.ema": ((lambda v: 0 <= v < 1), "a decay in [0, 1) (0 = no EMA)"),
    "train.ema_rampup": _at_least(0),
    **{f"train.{k}": _at_least(0.0) for k in ("ema_kimg", "ema_rampup_ratio", "schedule_kimg", "ada_kimg")},
    "train.ada_target": ((lambda v: -1 < v < 1), "a value in (-1, 1), e.g. 0.6"),
    "train.ada_interval": _at_least(1),
    "train.max_skip_fraction": _FRACTION,
    "train.jpeg_quality": ((lambda v: 1 <= v <= 95), "a JPEG quality in 1..95"),
    "train.num_workers": _at_least(0), "train.log_every": _at_least(1), "train.sample_every": _at_least(0),
    "checkpoint.every": _at_least(0),
    "checkpoint.keep": ((lambda v: v >= 2), "an integer >= 2 (the newest may be in the middle of being written)"),
    "guard.retries": _at_least(0),
    "guard.lr_factor": ((lambda v: 0 < v <= 1), "a factor in (0, 1]"),
    "guard.inject_nan_at": _at_least(0), "guard.inject_nan_times": _at_least(1),
    "eval.every": _at_least(0), "eval.batch_size": _at_least(1),
}  # fmt: skip


def _get(config: RunConfig, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
