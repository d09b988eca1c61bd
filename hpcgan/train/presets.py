"""Presets: `--gan NAME` picks a function returning a full RunConfig. Each derives from a base and
changes what makes it that GAN; `key=value` overrides come on top."""

from __future__ import annotations

from collections.abc import Callable

from hpcgan.errors import UserError
from hpcgan.train.config_schema import RunConfig


def dcgan(resolution: int) -> RunConfig:
    """DCGAN, with one change from the paper: no BatchNorm in D (`model.d_batchnorm=true` restores
    it). On our phantoms, the BatchNorm D separated real from fake within ~25 steps and G never
    recovered (D accuracy 1.0, G producing speckle after 300 steps at widths 16-64); without it,
    G draws chest-like images by step 300."""
    config = RunConfig(gan=f"dcgan{resolution}")
    config.model.resolution = resolution
    config.model.d_batchnorm = False
    # Narrower at high resolution so that dcgan512 fits a batch of 8+ per GPU.
    config.model.g_width = config.model.d_width = {64: 64, 128: 64, 256: 32, 512: 16}.get(resolution, 64)
    return config


def vanilla64() -> RunConfig:
    config = dcgan(64)
    config.gan, config.model.arch, config.model.g_width, config.model.d_width = "vanilla64", "mlp", 256, 256
    return config


def wgan64() -> RunConfig:
    config = dcgan(64)
    config.gan, config.loss.kind = "wgan64", "wgan"
    config.optim.name, config.optim.lr_g, config.optim.lr_d = "rmsprop", 5e-5, 5e-5
    config.optim.d_steps, config.optim.weight_clip = 5, 0.01
    return config


def wgan_gp256() -> RunConfig:
    config = dcgan(256)
    config.gan, config.loss.kind, config.loss.gp_weight = "wgan-gp256", "wgan", 10.0
    config.optim.lr_g = config.optim.lr_d = 1e-4
    config.optim.beta1, config.optim.beta2, config.optim.d_steps = 0.0, 0.9, 5
    return config


# Conditional DCGANs take their class as z * embed(class), not [z, embed(class)]. With the class
# concatenated to z, cgan64 and acgan256 drew one image per class on the real Kermany radiographs
# (pixel sd across samples 0.02-0.05 against 0.25 for real images, measured on the raw G): BatchNorm
# in G normalises each feature by a batch that mixes classes, G learns to let the class term carry
# the features' variance (6x z's share in the first layer of a collapsed cgan64), and z's share
# shrinks until it no longer moves the image. With the product every input dimension carries z, so
# G cannot draw without it: the same runs gave sd 0.16-0.27 and varied anatomy. Spectral norm,
# hinge vs BCE, Adam's beta1 and DiffAugment did not matter (each changed alone: 0.03-0.05).
def cgan64() -> RunConfig:
    config = dcgan(64)
    config.gan, config.model.conditional, config.model.g_conditioning = "cgan64", "projection", "multiply"
    return config


def acgan256() -> RunConfig:
    config = dcgan(256)
    config.gan, config.model.conditional, config.model.g_conditioning = "acgan256", "aux", "multiply"
    return config


def bigan64() -> RunConfig:
    """Seed 003: an encoder E learns the inverse of G; D judges (x, z) pairs."""
    config = dcgan(64)
    config.gan, config.model.arch = "bigan64", "bigan"
    return config


def skipgan512() -> RunConfig:
    """Seed 004 at 512 px: upsampling blocks with more filters deeper and image skips, a
    spectral-norm ResNet D, and a fine-tune phase at a tenth of the LR for the last fifth."""
    config = dcgan(512)
    config.gan, config.model.arch = "skipgan512", "skipgan"
    config.model.d_spectral_norm = True
    config.optim.finetune_from, config.optim.finetune_scale = 0.8, 0.1  # the last 20% of train.steps
    return config


def sngan256() -> RunConfig:
    """The modern default for a few thousand images: spectral norm, hinge, R1, EMA, DiffAugment."""
    config = dcgan(256)
    config.gan, config.loss.kind, config.loss.r1_gamma = "sngan256", "hinge", 0.1
    config.model.d_arch, config.model.d_spectral_norm = "resnet", True
    config.optim.beta1, config.optim.beta2 = 0.0, 0.99
    config.train.diffaugment = "brightness,contrast,translation"
    return config


def r3gan(resolution: int) -> RunConfig:
    """R3GAN (Huang et al. 2024): residual stages with no normalisation (hpcgan/models/r3gan.py), the
    relativistic pairing loss with R1 and R2, and the paper's schedules, scaled to our runs: gamma
    decays to a tenth, the LR from 2e-4 to a quarter, beta2 warms up from 0.9 to 0.99 (all on a
    cosine over the run), and the EMA generator keeps a half-life of 10 kimg (StyleGAN2-ADA's value
    for a global batch of 32; scale it with yours), ramped up over the first images."""
    config = RunConfig(gan=f"r3gan{resolution}")
    m = config.model
    m.arch, m.resolution, m.z_dim, m.blocks, m.max_width = "r3gan", resolution, 64, 2, 512
    m.g_conditioning = "multiply"  # not the paper's concatenation: see cgan64 below
    # Width at the output resolution; it doubles per halving up to 512. r3gan512 at batch 8 in bf16
    # needs 28.7 GB (python -m hpcgan.bench memory; the arithmetic is in hpcgan/models/r3gan.py).
    m.g_width = m.d_width = {32: 256, 64: 128, 128: 64, 256: 64, 512: 64, 1024: 32}.get(resolution, 32)
    config.loss.kind = "rpgan"
    # gamma: 2 at 64 px for FFHQ in the paper, 150 at 256 px; ours is chosen by python -m hpcgan.bench quality.
    config.loss.r1_gamma = config.loss.r2_gamma = R3GAN_GAMMA.get(resolution, 1.0)
    config.loss.gamma_decay = 0.1
    o = config.optim
    o.lr_g = o.lr_d = 2e-4
    o.lr_decay, o.beta1, o.beta2, o.beta2_start = 0.25, 0.0, 0.99, 0.9
    config.train.ema_kimg, config.train.ema_rampup_ratio = 10.0, 0.05
    return config


R3GAN_GAMMA = {32: 0.5, 64: 1.0, 128: 2.0, 256: 10.0, 512: 20.0, 1024: 40.0}


PRESETS: dict[str, Callable[[], RunConfig]] = {
    "r3gan64": lambda: r3gan(64),
    "r3gan128": lambda: r3gan(128),
    "r3gan256": lambda: r3gan(256),
    "r3gan512": lambda: r3gan(512),
    "vanilla64": vanilla64,
    "dcgan64": lambda: dcgan(64),
    "dcgan128": lambda: dcgan(128),
    "dcgan256": lambda: dcgan(256),
    "dcgan512": lambda: dcgan(512),
    "wgan64": wgan64,
    "wgan-gp256": wgan_gp256,
    "cgan64": cgan64,
    "acgan256": acgan256,
    "bigan64": bigan64,
    "skipgan512": skipgan512,
    "sngan256": sngan256,
}


def cpu_overrides(gan: str, width: int | None = None) -> tuple[str, ...]:
    """Overrides that make a preset train in minutes on a 2-core CPU (the demo, the quality benchmark).

    The presets' widths are for GPUs, where a run has hours. For R3GAN: `width` channels at the output
    resolution (default 8) doubling to 128, one block per stage, R1/R2 on every 4th step, and a 5x LR.
    Measured at 64 px: width 16 trains at 17 images/s, width 8 at 60, lazy R1/R2 adds about a third,
    so in minutes steps matter more than width; at width 8, LR 2e-4 still draws a grid of blobs after
    300 steps on phantoms where 1e-3 draws torsos with a spine and lung fields. Other presets: `width`
    (default 16) for G and D.
    """
    if gan.startswith("r3gan"):
        w = width or 8
        return (f"model.g_width={w}", f"model.d_width={w}", "model.max_width=128", "model.blocks=1",
                "loss.penalty_every=4", "optim.lr_g=1e-3", "optim.lr_d=1e-3")  # fmt: skip
    w = width or 16
    return (f"model.g_width={w}", f"model.d_width={w}")


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise UserError(f"--gan {name}: unknown preset; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()
