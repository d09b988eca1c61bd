"""Every key of a run's configuration: its section, type, default and one-line meaning.

A preset (hpcgan/train/presets.py) returns a full RunConfig; `key=value` overrides then set single
keys (hpcgan/train/config_keys.py), `hpcgan config` lists them, and hpcgan/train/config.py checks
the values. No torch here: the keys must be readable on a login node in a fraction of a second.

Choice keys are Literals. Several mirror a registry in the module that implements them (named in
the comments); tests/train/test_config.py asserts that each pair agrees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from hpcgan.train.config_keys import CommaList, flatten, key, section, set_field

Arch = Literal["mlp", "dcgan", "skipgan", "bigan", "r3gan"]  # models/build.py ARCHS
DArch = Literal["auto", "mlp", "dcgan", "resnet", "r3gan"]  # models/build.py D_ARCHS
Conditional = Literal["none", "projection", "aux"]  # models/heads.py CONDITIONALS
GConditioning = Literal["concat", "multiply"]  # models/dcgan.py CONDITIONINGS
LossKind = Literal["bce", "hinge", "wgan", "rpgan"]  # models/losses.py LOSSES
OptimName = Literal["adam", "rmsprop"]  # the trainer's optimizer factory
PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]  # train/precision.py PRECISIONS
Strategy = Literal["ddp", "deepspeed"]
OffloadDevice = Literal["none", "cpu"]
AugmentName = Literal["brightness", "contrast", "translation", "jpeg"]  # models/augment.py POLICIES
DiffAugmentName = Literal["brightness", "contrast", "translation"]  # as above, but jpeg has no gradient
GuardPolicy = Literal["lr", "reseed", "both"]  # train/guard.py POLICIES
ExtractorName = Literal["random", "inception", "xrv"]  # eval/extractors.py EXTRACTORS
LabelSampling = Literal["auto", "data", "balanced"]  # train/fake_labels.py LABEL_SAMPLINGS
RealBalance = Literal["none", "findings"]  # data/loader.py BALANCES
LoggerName = Literal["tensorboard", "wandb"]  # train/live_loggers.py LOGGERS
EvalSplit = Literal["train", "val"]  # a shard set's splits (data/sources.py), test kept out of training
AugmentList = Annotated[str, CommaList(AugmentName)]
DiffAugmentList = Annotated[str, CommaList(DiffAugmentName)]
LoggerList = Annotated[str, CommaList(LoggerName)]


@dataclass
class ModelConfig:
    arch: Arch = key("dcgan", "the generator family (hpcgan/models/build.py); D follows it unless d_arch is set")
    d_arch: DArch = key("auto", "the discriminator; auto: the generator family's own")
    resolution: int = key(64, "image side in px; must match the shard set")
    z_dim: int = key(128, "length of the latent vector z")
    g_width: int = key(64, "channels of G's last block (doubling towards the seed)")
    d_width: int = key(64, "channels of D's first block")
    conditional: Conditional = key("none", "class conditioning: none, projection (cGAN) or aux (AC-GAN)")
    d_batchnorm: bool = key(False, "BatchNorm in D, as in the DCGAN paper (off: see presets.dcgan for why)")
    d_spectral_norm: bool = key(False, "spectral normalisation of D's weights")
    max_width: int = key(512, "r3gan: the widest stage (widths double from g_width/d_width towards 4 px)")
    blocks: int = key(2, "r3gan: residual blocks per resolution")
    g_conditioning: GConditioning = key("concat", "dcgan, r3gan: class embedding concatenated to z, or multiplied")


@dataclass
class LossConfig:
    kind: LossKind = key("bce", "the adversarial loss; rpgan: relativistic pairing (R3GAN)")
    gp_weight: float = key(0.0, "WGAN-GP gradient penalty weight (0: off)")
    r1_gamma: float = key(0.0, "R1 penalty on real data, weight gamma / 2")
    r2_gamma: float = key(0.0, "R2 penalty on generated data, weight gamma / 2")
    gamma_decay: float = key(1.0, "R1/R2 gamma at the schedule's end, as a fraction of its start (cosine)")
    penalty_every: int = key(1, "R1/R2 on every k-th step only, k x as strong (lazy regularisation; 1: every step)")
    aux_weight: float = key(1.0, "AC-GAN class loss weight")
    label_smoothing: float = key(0.0, "real targets are 1 - s (BCE only)")
    label_noise: float = key(0.0, "probability of swapping a sample's target, real <-> fake (BCE only)")


@dataclass
class OptimConfig:
    name: OptimName = key("adam", "the optimizer of G and of D")
    lr_g: float = key(2e-4, "G's learning rate")
    lr_d: float = key(2e-4, "D's learning rate")
    beta1: float = key(0.5, "Adam's beta1")
    beta2: float = key(0.999, "Adam's beta2")
    beta2_start: float = key(0.0, "> 0: beta2 warms up from this to optim.beta2 over the schedule (cosine)")
    lr_decay: float = key(1.0, "LR at the schedule's end, as a fraction of lr_g / lr_d (cosine)")
    d_steps: int = key(1, "D updates per G update (n_critic)")
    g_steps: int = key(1, "G updates per D update")
    weight_clip: float = key(0.0, "WGAN weight clipping of D (0: off)")
    grad_clip: float = key(0.0, "max gradient norm (0: off)")
    # An int default: 0.0 would change the hash of every existing run.
    finetune_from: float = key(0, "from this step (or this fraction of train.steps if < 1), LRs x finetune_scale")
    finetune_scale: float = key(0.1, "the LR factor of the fine-tune phase (optim.finetune_from)")
    fused: bool = key(True, "Adam's fused kernel (CPU and CUDA): one pass per step instead of ~10 per tensor")


@dataclass
class TrainConfig:
    steps: int = key(1000, "generator updates")
    batch_size: int = key(32, "images per rank per step")
    precision: PrecisionName = key("auto", "autocast dtype; auto: fp32 on CPU, bf16 on CUDA")
    ema: float = key(0.999, "the EMA generator's per-step decay (0: no EMA), unless ema_kimg is set")
    ema_rampup: int = key(100, "steps over which the per-step EMA decay ramps up")
    ema_kimg: float = key(0.0, "> 0: EMA half-life in thousands of images (replaces the per-step decay)")
    ema_rampup_ratio: float = key(0.05, "with ema_kimg: the half-life is at most this fraction of the images so far")
    schedule_kimg: float = key(0.0, "LR, beta2 and gamma schedules span this many kimg (0: the whole run)")
    ada: bool = key(False, "adaptive discriminator augmentation (hpcgan/models/ada_pipeline.py)")
    ada_target: float = key(0.6, "ADA raises p while E[sign(D(real))] is above this")
    ada_kimg: float = key(0.0, "kimg for p to go from 0 to 1 (0: min(500, a tenth of the run))")
    ada_interval: int = key(4, "steps between adjustments of p")
    max_skip_fraction: float = key(0.01, "damaged samples are skipped and counted; above this share of images, stop")
    augment: AugmentList = key("", "augmentations of real images only, e.g. brightness,translation")
    jpeg_quality: int = key(40, "the jpeg augmentation draws a quality from [jpeg_quality, 95]")
    diffaugment: DiffAugmentList = key("", "DiffAugment: applied to real and fake images before D")
    num_workers: int = key(2, "data loader processes per rank")
    label_sampling: LabelSampling = key("auto", "the fakes' classes / label sets: auto (classes uniform, label sets "
                                        "as in the data), data (both as in the data), balanced (every class, every "
                                        "finding equally often)")  # fmt: skip
    balance: RealBalance = key("none", "findings: real batches drawn so that every class / finding is seen "
                               "equally often (rare findings oversampled), the issue's data.balance")  # fmt: skip
    log_every: int = key(10, "steps between metric records (metrics.jsonl)")
    loggers: LoggerList = key("", "live curves of metrics.jsonl's records, e.g. tensorboard,wandb (RUN/loggers/)")
    sample_every: int = key(500, "steps between sample grids (0: only at the end)")
    channels_last: bool = key(True, "NHWC convolutions (faster in oneDNN and on tensor cores); see bench train")
    deterministic: bool = key(False, "CUDA: deterministic kernels, so a resumed run ends bit-identical (slower)")
    strategy: Strategy = key("ddp", "ddp (accelerate) or deepspeed (two ZeRO engines, train/deepspeed_strategy.py)")
    zero: int = key(2, "strategy=deepspeed: ZeRO stage 1 (optimizer states partitioned) or 2 (and gradients)")
    offload_optimizer: OffloadDevice = key("none", "strategy=deepspeed: cpu keeps optimizer states in host RAM")
    deepspeed_config: str = key("", "strategy=deepspeed: a DeepSpeed JSON merged in; must agree with train.*")


@dataclass
class CheckpointConfig:
    every: int = key(500, "steps between checkpoints (0: only at the end and on demand)")
    keep: int = key(3, "the newest k are kept (>= 2: the newest may be in the middle of being written)")


@dataclass
class EvalConfig:
    every: int = key(0, "steps between FID/KID evaluations during training (0: never)")
    n: int = key(2000, "generated images per evaluation")
    extractor: ExtractorName = key("random", "the feature extractor (hpcgan/eval/extractors.py)")
    weights: str = key("", "the extractor's weights file (empty: $HPCGAN_INCEPTION_WEIGHTS or the hub cache)")
    split: EvalSplit = key("train", "the shard set's split the generated images are compared with")
    batch_size: int = key(64, "images per forward pass of the extractor")


@dataclass
class GuardConfig:
    policy: GuardPolicy = key("lr", "after a rollback: lr (scale both LRs by lr_factor), reseed, or both")
    retries: int = key(3, "rollbacks without a new checkpoint before giving up (0: stop at the first)")
    lr_factor: float = key(0.5, "the LR scale per rollback (policy lr or both)")
    inject_nan_at: int = key(0, "fault injection for tests and drills: D's loss is NaN at this step (0: off)")
    inject_nan_times: int = key(1, "how many times reaching inject_nan_at injects the NaN")


# Keys added after runs existed, at their defaults: left out of the hash, so those runs still resume.
LATER_KEYS = {
    "model": {"max_width": 512, "blocks": 2, "g_conditioning": "concat"},
    "loss": {"r2_gamma": 0.0, "gamma_decay": 1.0, "penalty_every": 1},
    "optim": {"beta2_start": 0.0, "lr_decay": 1.0},
    "train": {"ema_kimg": 0.0, "ema_rampup_ratio": 0.05, "schedule_kimg": 0.0, "ada": False, "ada_target": 0.6,
              "ada_kimg": 0.0, "ada_interval": 4, "label_sampling": "auto", "balance": "none"},
}  # fmt: skip

# Cadences, and how the work is spread over ranks: a checkpoint resumes under any of them (a DDP
# checkpoint can start a DeepSpeed run and back), and runs from before these keys keep their hash.
NOT_HASHED_TRAIN_KEYS = ("steps", "log_every", "sample_every", "num_workers", "strategy", "zero",
                         "offload_optimizer", "deepspeed_config", "max_skip_fraction", "deterministic")  # fmt: skip

# Where the curves go, not what the run computes: a resumed run may add or drop a logger.
NOT_HASHED_TRAIN_KEYS += ("loggers",)


@dataclass
class RunConfig:
    gan: str = key("dcgan64", "the preset this configuration started from (--gan)")
    data: str = key("", "the shard set directory (--data)")
    seed: int = key(0, "the run's random seed")
    model: ModelConfig = section(ModelConfig, "the networks")
    loss: LossConfig = section(LossConfig, "the adversarial loss and its penalties")
    optim: OptimConfig = section(OptimConfig, "optimizers, learning rates and their schedule")
    train: TrainConfig = section(TrainConfig, "the training loop: steps, batches, EMA, augmentation, distribution")
    checkpoint: CheckpointConfig = section(CheckpointConfig, "checkpoints in RUN/checkpoints")
    guard: GuardConfig = section(GuardConfig, "the divergence guard (hpcgan/train/guard.py)")
    eval: EvalConfig = section(EvalConfig, "FID/KID during training (hpcgan/train/evaluator.py)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """What must match for an exact resume: everything but the step count and cadences."""
        return _digest(self.to_dict())

    def accepted_hashes(self) -> set[str]:
        """The hashes a checkpoint of this same configuration may carry. A float key whose default is
        an int (optim.finetune_from = 0) hashes as 0 in a config built from a preset (`hpcgan train`)
        and as 0.0 in one rebuilt from its saved dict (a SLURM job's): a run started one way resumes
        the other. hash() itself stays as it was, so the runs on disk keep theirs."""
        as_floats = RunConfig.from_dict(self.to_dict()).to_dict()
        as_defaults = RunConfig.from_dict(self.to_dict()).to_dict()
        for dotted, default in flatten(RunConfig().to_dict()):
            *path, name = dotted.split(".")
            table = as_defaults
            for part in path:
                table = table[part]
            if type(default) is int and isinstance(table[name], float) and table[name] == default:
                table[name] = default
        return {self.hash(), _digest(as_floats), _digest(as_defaults)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        config = cls()
        for dotted, value in flatten(d):
            set_field(config, dotted, value)
        return config


def _digest(d: dict[str, Any]) -> str:
    """RunConfig.hash of a config's dict."""
    d = dict(d)  # the sections below are replaced, never edited: the caller's dict stays whole
    d["train"] = {k: v for k, v in d["train"].items() if k not in NOT_HASHED_TRAIN_KEYS}
    for name, defaults in LATER_KEYS.items():
        d[name] = {k: v for k, v in d[name].items() if k not in defaults or defaults[k] != v}
    d.pop("checkpoint")
    d.pop("guard")  # its effect (LR scale, reseeds) is in the checkpoint's guard state
    d.pop("eval")  # measures, changes nothing
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
