"""The run configuration: typed dataclasses, one per component, with `key=value` overrides.

A preset (hpcgan/train/presets.py) is a function returning a full RunConfig; the command line
then overrides single fields by dotted key, e.g. `train.steps=500 optim.lr_g=1e-4 seed=3`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpcgan.errors import UserError
from hpcgan.eval.extractors import EXTRACTORS
from hpcgan.eval.inception import find_weights
from hpcgan.models.augment import POLICIES
from hpcgan.models.build import ModelSpec, build_networks
from hpcgan.models.dcgan import CONDITIONINGS
from hpcgan.models.losses import LOSSES
from hpcgan.train.deepspeed_config import check_strategy
from hpcgan.train.guard import POLICIES as GUARD_POLICIES
from hpcgan.train.precision import PRECISIONS


@dataclass
class ModelConfig:
    arch: str = "dcgan"  # mlp | dcgan | skipgan | bigan | r3gan (the generator family, see models/build.py)
    d_arch: str = "auto"  # auto (the family's own) | mlp | dcgan | resnet | r3gan
    resolution: int = 64  # px; must match the shard set
    z_dim: int = 128
    g_width: int = 64  # channels of G's last block (doubling towards the seed)
    d_width: int = 64  # channels of D's first block
    conditional: str = "none"  # none | projection (cGAN) | aux (AC-GAN)
    d_batchnorm: bool = False  # the DCGAN paper's D has it; see presets.dcgan for why ours does not
    d_spectral_norm: bool = False
    max_width: int = 512  # r3gan: the widest stage (widths double from g_width/d_width towards 4 px)
    blocks: int = 2  # r3gan: residual blocks per resolution
    g_conditioning: str = "concat"  # dcgan, r3gan: the class embedding concatenated to z, or multiplied into it


@dataclass
class LossConfig:
    kind: str = "bce"  # bce | hinge | wgan | rpgan (relativistic pairing, R3GAN)
    gp_weight: float = 0.0  # WGAN-GP gradient penalty
    r1_gamma: float = 0.0  # R1 penalty on real data, weight gamma / 2
    r2_gamma: float = 0.0  # R2 penalty on generated data, weight gamma / 2
    gamma_decay: float = 1.0  # R1/R2 gamma at the schedule's end, as a fraction of its start (cosine)
    penalty_every: int = 1  # R1/R2 on every k-th step only, k x as strong (lazy regularisation; 1: every step)
    aux_weight: float = 1.0  # AC-GAN class loss weight
    label_smoothing: float = 0.0  # real targets 1 - s (BCE only)
    label_noise: float = 0.0  # probability of swapping a sample's target, real <-> fake (BCE only)


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    beta2_start: float = 0.0  # > 0: beta2 warms up from this to optim.beta2 over the schedule (cosine)
    lr_decay: float = 1.0  # LR at the schedule's end, as a fraction of lr_g / lr_d (cosine)
    d_steps: int = 1  # D updates per G update (n_critic)
    g_steps: int = 1  # G updates per D update
    weight_clip: float = 0.0  # WGAN weight clipping of D
    grad_clip: float = 0.0  # max gradient norm, 0 = off
    finetune_from: float = 0  # from this step (or this fraction of train.steps if < 1), LRs x finetune_scale
    finetune_scale: float = 0.1
    fused: bool = True  # Adam's fused kernel (CPU and CUDA): one pass per step instead of ~10 per tensor


@dataclass
class TrainConfig:
    steps: int = 1000  # generator updates
    batch_size: int = 32  # per rank
    precision: str = "auto"  # auto (fp32 on CPU, bf16 on CUDA) | fp32 | bf16 | fp16
    ema: float = 0.999  # 0 = no EMA generator; per-step decay, unless ema_kimg is set
    ema_rampup: int = 100  # steps over which the per-step decay ramps up
    ema_kimg: float = 0.0  # > 0: EMA half-life in thousands of images (replaces the per-step decay) ...
    ema_rampup_ratio: float = 0.05  # ... at most this fraction of the images seen so far
    schedule_kimg: float = 0.0  # LR, beta2 and gamma schedules span this many kimg (0: the whole run)
    ada: bool = False  # adaptive discriminator augmentation (hpcgan/models/ada_pipeline.py)
    ada_target: float = 0.6  # ADA raises p while E[sign(D(real))] is above this
    ada_kimg: float = 0.0  # kimg for p to go from 0 to 1 (0: min(500, a tenth of the run))
    ada_interval: int = 4  # steps between adjustments of p
    max_skip_fraction: float = 0.01  # damaged samples are skipped and counted; above this share of images, stop
    augment: str = ""  # applied to real images only: brightness,contrast,translation,jpeg
    jpeg_quality: int = 40  # the jpeg augmentation draws a quality from [jpeg_quality, 95]
    diffaugment: str = ""  # applied to real and fake before D
    num_workers: int = 2  # data loader processes per rank
    log_every: int = 10
    sample_every: int = 500
    channels_last: bool = True  # NHWC convolutions (faster in oneDNN and on tensor cores); see bench train
    strategy: str = "ddp"  # ddp (accelerate) | deepspeed (two ZeRO engines, hpcgan/train/deepspeed_strategy.py)
    zero: int = 2  # strategy=deepspeed: ZeRO stage 1 (optimizer states partitioned) | 2 (and gradients)
    offload_optimizer: str = "none"  # strategy=deepspeed: none | cpu (optimizer states and step in host memory)
    deepspeed_config: str = ""  # strategy=deepspeed: a DeepSpeed JSON merged in; must agree with the keys above


@dataclass
class CheckpointConfig:
    every: int = 500  # steps; 0 = only at the end and on demand
    keep: int = 3  # the newest k (>= 2: the newest may be in the middle of being written)


@dataclass
class EvalConfig:
    """FID/KID during training (hpcgan/train/fid_during_training.py)."""

    every: int = 0  # steps; 0 = never
    n: int = 2000  # generated images per evaluation
    extractor: str = "random"  # see hpcgan/eval/extractors.py
    weights: str = ""  # the extractor's weights file ("": $HPCGAN_INCEPTION_WEIGHTS or the hub cache)
    split: str = "train"  # the real images: the shard set's train or val split
    batch_size: int = 64


@dataclass
class GuardConfig:
    """The divergence guard (hpcgan/train/guard.py)."""

    policy: str = "lr"  # after a rollback: lr (scale both LRs by lr_factor) | reseed | both
    retries: int = 3  # rollbacks without a new checkpoint before giving up (0: stop at the first)
    lr_factor: float = 0.5
    inject_nan_at: int = 0  # fault injection for tests and drills: D's loss is NaN at this step ...
    inject_nan_times: int = 1  # ... the first this many times the run reaches it


# Keys added after runs existed, at their defaults: left out of the hash, so those runs still resume.
LATER_KEYS = {
    "model": {"max_width": 512, "blocks": 2, "g_conditioning": "concat"},
    "loss": {"r2_gamma": 0.0, "gamma_decay": 1.0, "penalty_every": 1},
    "optim": {"beta2_start": 0.0, "lr_decay": 1.0},
    "train": {"ema_kimg": 0.0, "ema_rampup_ratio": 0.05, "schedule_kimg": 0.0, "ada": False, "ada_target": 0.6,
              "ada_kimg": 0.0, "ada_interval": 4},
}  # fmt: skip

# Cadences, and how the work is spread over ranks: a checkpoint resumes under any of them (a DDP
# checkpoint can start a DeepSpeed run and back), and runs from before these keys keep their hash.
NOT_HASHED_TRAIN_KEYS = ("steps", "log_every", "sample_every", "num_workers", "strategy", "zero",
                         "offload_optimizer", "deepspeed_config", "max_skip_fraction")  # fmt: skip


@dataclass
class RunConfig:
    gan: str = "dcgan64"
    data: str = ""  # shard set directory
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """What must match for an exact resume: everything but the step count and cadences."""
        d = self.to_dict()
        d["train"] = {k: v for k, v in d["train"].items() if k not in NOT_HASHED_TRAIN_KEYS}
        for section, defaults in LATER_KEYS.items():
            d[section] = {k: v for k, v in d[section].items() if k not in defaults or defaults[k] != v}
        d.pop("checkpoint")
        d.pop("guard")  # its effect (LR scale, reseeds) is in the checkpoint's guard state
        d.pop("eval")  # measures, changes nothing
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        config = cls()
        for key, value in _flatten(d):
            set_field(config, key, value)
        return config


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def set_field(config: Any, dotted: str, value: Any) -> None:
    """Set `config.a.b = value`, converting strings to the field's type."""
    *path, name = dotted.split(".")
    target = config
    for part in path:
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            raise UserError(f"override {dotted}: no section {part!r}; sections are {_names(config)}")
        target = getattr(target, part)
    fields = {f.name: f for f in dataclasses.fields(target)} if dataclasses.is_dataclass(target) else {}
    if name not in fields or dataclasses.is_dataclass(getattr(target, name)):
        raise UserError(f"override {dotted}: unknown key; {'.'.join(path) or 'top level'} has {', '.join(fields)}")
    kind = typing.get_type_hints(type(target))[name]
    setattr(target, name, _convert(dotted, value, kind))


def _convert(dotted: str, value: Any, kind: Any) -> Any:
    if isinstance(kind, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if kind is int and not isinstance(value, bool):
            number = float(value)  # "2.9", 2.9, "1e999": never silently truncated or overflowing
            if not math.isfinite(number) or number != int(number):
                raise ValueError(value)
            return int(number)
        if kind is float and not isinstance(value, bool):
            return float(value)
        if kind is str and not isinstance(value, str):
            raise ValueError(value)
        return value
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"override {dotted}={value}: expected {kind.__name__}") from None


def _names(config: Any) -> str:
    return ", ".join(f.name for f in dataclasses.fields(config))


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r}: expected key=value, e.g. train.steps=500")
        set_field(config, key.strip(), value.strip())
    return config


def networks_for(config: RunConfig, num_classes: int):
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

    def require(ok: bool, key: str, expected: str) -> None:
        if not ok:
            raise UserError(f"{key}={_get(c, key)}: expected {expected}")

    require(c.loss.kind in LOSSES, "loss.kind", " | ".join(LOSSES))
    require(c.optim.name in ("adam", "rmsprop"), "optim.name", "adam | rmsprop")
    require(c.train.precision in PRECISIONS, "train.precision", " | ".join(PRECISIONS))
    check_strategy(c)
    require(c.guard.policy in GUARD_POLICIES, "guard.policy", " | ".join(GUARD_POLICIES))
    require(c.eval.extractor in EXTRACTORS, "eval.extractor", " | ".join(EXTRACTORS))
    require(c.eval.every == 0 or c.eval.n >= 4, "eval.n",
            "at least 4 generated images (precision/recall's k-NN; thousands for a stable FID)")  # fmt: skip
    if c.eval.every and c.eval.extractor == "inception":
        try:  # missing weights fail now, not at the first evaluation
            find_weights(c.eval.weights or None)
        except UserError as exc:
            raise UserError(f"eval.extractor=inception (weights file: eval.weights=FILE): {exc}") from None
    for key, (ok, expected) in RANGES.items():
        value = _get(c, key)
        finite = not isinstance(value, float) or math.isfinite(value)
        require(finite and ok(value), key, expected)
    require(c.model.g_conditioning in CONDITIONINGS, "model.g_conditioning", " | ".join(CONDITIONINGS))
    for key in ("train.augment", "train.diffaugment"):
        names = [n.strip() for n in _get(c, key).split(",") if n.strip()]
        allowed = [p for p in POLICIES if key == "train.augment" or p != "jpeg"]  # jpeg has no gradient
        require(all(n in allowed for n in names), key, f"a comma-separated list of {', '.join(allowed)}")


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
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
