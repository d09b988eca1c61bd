"""GAN losses on discriminator logits, and the regularisers (gradient penalty, R1 and R2).

`rpgan` is the relativistic pairing loss (R3GAN): D scores real image i against fake image i,
softplus(-(D(real_i) - D(fake_i))), and G the mirror. Only differences of logits matter, so a
constant shift of D's output changes nothing: its sign alone says nothing about real or fake."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge", "wgan", "rpgan")
RELATIVISTIC = ("rpgan",)  # losses on D(real) - D(fake) pairs


def d_loss(
    kind: str,
    real: torch.Tensor,
    fake: torch.Tensor,
    real_target: torch.Tensor | None = None,
    fake_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Discriminator loss. The per-sample targets (BCE only) carry label smoothing and swapping."""
    if kind == "bce":
        real_target = torch.ones_like(real) if real_target is None else real_target
        fake_target = torch.zeros_like(fake) if fake_target is None else fake_target
        return F.binary_cross_entropy_with_logits(real, real_target) + F.binary_cross_entropy_with_logits(
            fake, fake_target
        )
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan":
        return fake.mean() - real.mean()
    if kind == "rpgan":
        return F.softplus(fake - real).mean()
    raise ValueError(f"loss {kind!r}: expected one of {', '.join(LOSSES)}")


def g_loss(kind: str, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """`real`: D's logits on this step's real images, which the relativistic loss pairs with `fake`."""
    if kind == "bce":  # the non-saturating form
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "rpgan":
        if real is None:
            raise ValueError("the rpgan generator loss pairs fake with real logits: pass real")
        return F.softplus(real - fake).mean()
    return -fake.mean()  # hinge and wgan


def gradient_penalty(mixed_logits: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 at interpolates x_hat of real and fake (`mixed` must
    require grad; the caller runs D on it, so D can see it in the same pass as the rest)."""
    (grad,) = torch.autograd.grad(mixed_logits.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def zero_centred_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D at `inputs` (which must require grad): R1 on real images,
    R2 on generated ones (Mescheder et al. 2018; R3GAN uses both)."""
    return zero_centred_penalties(logits, [inputs])[0]


def zero_centred_penalties(logits: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """zero_centred_penalty for several inputs of one D pass (R1 on the real half of a batch, R2 on
    the fake half), with one backward through D instead of one per input: each sample's logit
    depends on its own image only, so the gradient of the summed logits splits by input."""
    grads = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return [grad.flatten(1).pow(2).sum(dim=1).mean() for grad in grads]
