"""One discriminator update and one generator update: the GAN math, for every preset.

Without BatchNorm, D sees real and fake in one forward pass, with the gradient-penalty
interpolates or R1's real inputs in the same batch; with BatchNorm, real and fake pass
separately, each normalised by its own batch statistics. The G step goes through D's unwrapped
module with D frozen: D's parameters need no gradient there, and a DDP forward without a
backward would leave DDP's reducer waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hpcgan.models.ada_pipeline import ada_augment
from hpcgan.models.augment import augment
from hpcgan.models.losses import RELATIVISTIC, d_loss, g_loss, gradient_penalty, zero_centred_penalties
from hpcgan.train.config import RunConfig
from hpcgan.train.fake_labels import FakeLabels, class_loss


@dataclass
class StepStats:
    """Detached scalar tensors: read (and synchronised with the device) only when logged."""

    loss: torch.Tensor
    real_acc: torch.Tensor | float = 0.0  # D's accuracy on real images (logit > 0)
    fake_acc: torch.Tensor | float = 0.0  # D's accuracy on fake images (logit < 0)
    penalty: torch.Tensor | float = 0.0
    grad_norm: torch.Tensor | float = 0.0  # set by the trainer after backward
    real_signs: torch.Tensor | float = 0.0  # ADA's heuristic: the sum of sign(D(real)) over the batch


def sample_latent(config: RunConfig, n: int, fake_labels: FakeLabels, gen: torch.Generator, device) -> tuple:
    z = torch.randn(n, config.model.z_dim, generator=gen, device=device)
    return z, fake_labels.draw(n, gen, device)


def _augment_for_d(config: RunConfig, images: torch.Tensor, gen: torch.Generator, ada_p: float) -> torch.Tensor:
    """What D sees of any image, real or fake, in either step: DiffAugment, then ADA with p."""
    if config.train.diffaugment:
        images = augment(images, config.train.diffaugment, gen)
    return ada_augment(images, ada_p, gen)


def discriminator_loss(
    config: RunConfig, g, d, real: torch.Tensor, labels: torch.Tensor, labels_of_fakes: FakeLabels,
    gen: torch.Generator, ada_p: float = 0.0, gamma_scale: float = 1.0,
) -> tuple[torch.Tensor, StepStats]:  # fmt: skip
    """`gamma_scale`: the factor on loss.r1_gamma and loss.r2_gamma this step (the schedule's decay, x k on
    every k-th step with loss.penalty_every=k, 0 on the others)."""
    c, n = config, len(real)
    z, fake_labels = sample_latent(c, n, labels_of_fakes, gen, real.device)
    bigan = c.model.arch == "bigan"
    with torch.no_grad():  # no G graph, and no DDP reduction armed for G
        if bigan:  # D scores (x, E(x)) against (G(z), z)
            fake, encoded = g(z, fake_labels, real)
            codes = [encoded, z]
        else:
            fake, codes = g(z, fake_labels), None
    real, fake = _augment_for_d(c, real, gen, ada_p), _augment_for_d(c, fake, gen, ada_p)
    inputs, cond = [real, fake], [labels, fake_labels]
    if c.loss.gp_weight:
        alpha = torch.rand(n, 1, 1, 1, generator=gen, device=real.device)
        inputs.append((alpha * real + (1 - alpha) * fake).requires_grad_(True))
        cond.append(labels)
        if codes is not None:
            codes.append(alpha.flatten(1) * codes[0] + (1 - alpha.flatten(1)) * codes[1])
    r1_gamma, r2_gamma = c.loss.r1_gamma * gamma_scale, c.loss.r2_gamma * gamma_scale  # 0: not this step
    if r1_gamma:
        real = inputs[0] = real.detach().requires_grad_(True)
    if r2_gamma:
        fake = inputs[1] = fake.detach().requires_grad_(True)
    if c.model.d_batchnorm:
        # Separate passes, as in DCGAN: each batch is normalised by its own statistics, as the
        # fake-only batch of the G step will be. (DDP allows the two forwards since its buffers
        # are not re-broadcast, see trainer._accelerator.)
        real_out, fake_out = d(inputs[0], cond[0]), d(inputs[1], cond[1])
        logits = torch.cat([real_out[0], fake_out[0]])
        class_logits = None if real_out[1] is None else torch.cat([real_out[1], fake_out[1]])
    elif codes is not None:
        logits, class_logits = d(torch.cat(inputs), torch.cat(cond), torch.cat(codes))
    else:
        logits, class_logits = d(torch.cat(inputs), torch.cat(cond))
    real_logits, fake_logits = logits[:n], logits[n : 2 * n]

    real_target = fake_target = None
    if c.loss.kind == "bce" and (c.loss.label_smoothing or c.loss.label_noise):
        # One-sided smoothing (real -> 1 - s), and each sample's target swapped with p = label_noise.
        real_target = torch.full_like(real_logits, 1.0 - c.loss.label_smoothing)
        fake_target = torch.zeros_like(fake_logits)
        swap = torch.rand(2, n, generator=gen, device=real.device) < c.loss.label_noise
        real_target = torch.where(swap[0], fake_target, real_target)
        fake_target = torch.where(swap[1], torch.full_like(fake_target, 1.0 - c.loss.label_smoothing), fake_target)
    loss = d_loss(c.loss.kind, real_logits, fake_logits, real_target, fake_target)
    penalty = torch.zeros((), device=real.device)
    if c.loss.gp_weight:
        penalty = penalty + c.loss.gp_weight * gradient_penalty(logits[2 * n :], inputs[2])
    # R1 on the real images, R2 on the fakes: one backward through D for both.
    penalised = [(x, gamma) for x, gamma in ((inputs[0], r1_gamma), (inputs[1], r2_gamma)) if gamma]
    if penalised:
        both = len(penalised) == 2
        logits_in = logits[: 2 * n] if both else (real_logits if r1_gamma else fake_logits)
        terms = zero_centred_penalties(logits_in, [x for x, _ in penalised])
        for (_, gamma), term in zip(penalised, terms, strict=True):
            penalty = penalty + gamma / 2 * term
    if class_logits is not None:
        loss = loss + c.loss.aux_weight * (
            class_loss(class_logits[:n], labels) + class_loss(class_logits[n : 2 * n], fake_labels)
        )
    with torch.no_grad():
        # A relativistic D's logits have no zero point: it is right when it orders a pair correctly.
        margin = real_logits - fake_logits if c.loss.kind in RELATIVISTIC else real_logits
        stats = StepStats(
            loss.detach(),
            (margin > 0).float().mean(),
            (fake_logits < real_logits if c.loss.kind in RELATIVISTIC else fake_logits < 0).float().mean(),
            penalty.detach(),
            real_signs=torch.sign(margin.float()).sum(),
        )
    return loss + penalty, stats


def generator_loss(
    config: RunConfig,
    g,
    d_module,
    n: int,
    labels_of_fakes: FakeLabels,
    gen: torch.Generator,
    device,
    real: torch.Tensor | None = None,
    real_labels: torch.Tensor | None = None,
    ada_p: float = 0.0,
) -> tuple[torch.Tensor, StepStats]:
    """`real`: this step's real batch, which BiGAN's encoder encodes and the relativistic loss
    pairs with the fakes (D sees it augmented as in its own step)."""
    z, fake_labels = sample_latent(config, n, labels_of_fakes, gen, device)
    if config.model.arch == "bigan":
        fake, encoded = g(z, fake_labels, real)
        fake, real = _augment_for_d(config, fake, gen, ada_p), _augment_for_d(config, real, gen, ada_p)  # as D saw them
        fake_logits, _ = d_module(fake, fake_labels, z)
        real_logits, _ = d_module(real, fake_labels, encoded)
        # G and E minimise D's objective with the labels swapped: (G(z), z) should look real
        # and (x, E(x)) fake.
        loss = d_loss(config.loss.kind, fake_logits, real_logits)
        return loss, StepStats(loss.detach())
    fake = _augment_for_d(config, g(z, fake_labels), gen, ada_p)
    logits, class_logits = d_module(fake, fake_labels)
    real_logits = None
    if config.loss.kind in RELATIVISTIC:
        with torch.no_grad():
            real_logits, _ = d_module(_augment_for_d(config, real, gen, ada_p), real_labels)
    loss = g_loss(config.loss.kind, logits, real_logits)
    if class_logits is not None:
        loss = loss + config.loss.aux_weight * class_loss(class_logits, fake_labels)
    return loss, StepStats(loss.detach())
