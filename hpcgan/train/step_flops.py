"""FLOPs per training image of a preset, counted by torch's FlopCounterMode on one real step.

The step functions the trainer runs (gan_steps.discriminator_loss and generator_loss, each with its
backward) run on fake tensors: shapes without storage, so r3gan512 counts in seconds and in no
memory. FLOPs are 2 x multiply-accumulates of the convolutions and matrix products (FlopCounterMode's
convention); the element-wise work (activations, resampling, Adam, EMA) is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from hpcgan.train.config import networks_for
from hpcgan.train.config_schema import RunConfig
from hpcgan.train.fake_labels import FakeLabels
from hpcgan.train.gan_steps import discriminator_loss, generator_loss

BATCH = 2  # images per counted step; no preset's networks mix samples, so FLOPs per image do not depend on it


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker: that one's backward hooks break
    torch.autograd.grad, which the gradient penalty and R1 call. Totals are unchanged."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *args: object) -> None:
        pass


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                         _output_padding, _groups, output_mask, out_shape=None, **_) -> int:  # fmt: skip
    """Input and weight gradients of a convolution each cost what its forward costs. torch 2.13's own
    formula leaves out the groups in the weight gradient and counts a grouped conv's `groups` times
    over (64x for R3GAN's widest blocks; pytorch PR #183405); the weight's shape [out, in/groups, k, k]
    already holds them: multiply-adds = elements of the output (of the input, transposed) x prod(w[1:])."""
    forward = 2 * math.prod(x_shape if transposed else grad_out_shape) * math.prod(w_shape[1:])
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def flop_counter() -> FlopCounterMode:
    """torch's FlopCounterMode, counting totals only (see _GlobalOnly), grouped conv gradients counted once."""
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops})
    counter.mod_tracker = _GlobalOnly()
    return counter


def count_flops(run: Callable[[], object]) -> int:
    """FLOPs of `run()`, which builds its tensors and modules itself: they are fake (shapes only)."""
    with FakeTensorMode(allow_non_fake_inputs=True):
        counter = flop_counter()
        with counter:
            run()
    return counter.get_total_flops()


@dataclass(frozen=True)
class StepFlops:
    """FLOPs per image of a preset's training, and of its generator alone (for sampling and FID)."""

    d_update: float  # one D update per real image: G forward, D on real and fake, backward, R1/R2 averaged
    g_update: float  # one G update per image: G and D forward, backward through both
    g_forward: float  # drawing one image
    d_steps: int
    g_steps: int
    grad_params: int  # parameters of G and D: the gradients DDP all-reduces
    g_params: int
    d_params: int

    @property
    def per_image(self) -> float:
        """Per real image shown to D (the unit of kimg): d_steps D updates and g_steps G updates per
        step, each over a batch."""
        return self.d_update + self.g_update * self.g_steps / self.d_steps


def training_flops(config: RunConfig, num_classes: int = 0) -> StepFlops:
    """Counts the trainer's own D and G updates for `config` (batch BATCH, fake tensors, CPU rules).
    With loss.penalty_every=k, R1/R2 run on one step in k: both kinds of D update are counted."""
    c = config
    labels_of_fakes = FakeLabels(num_classes)
    size = c.model.resolution
    params: dict[str, int] = {}

    def d_update(gamma_scale: float) -> Callable[[], None]:
        def run() -> None:
            g, d = networks_for(c, num_classes)
            params.update(g=sum(p.numel() for p in g.parameters()), d=sum(p.numel() for p in d.parameters()))
            real, labels = torch.zeros(BATCH, 1, size, size), torch.zeros(BATCH, dtype=torch.long)
            loss, _ = discriminator_loss(c, g, d, real, labels, labels_of_fakes, torch.Generator(), 0.0, gamma_scale)
            loss.backward()

        return run

    def g_update() -> None:
        g, d = networks_for(c, num_classes)
        d.requires_grad_(False)  # as the trainer's G step: D frozen
        real, labels = torch.zeros(BATCH, 1, size, size), torch.zeros(BATCH, dtype=torch.long)
        loss, _ = generator_loss(c, g, d, BATCH, labels_of_fakes, torch.Generator(), torch.device("cpu"), real, labels)
        loss.backward()

    def g_forward() -> None:
        g, _ = networks_for(c, num_classes)
        with torch.no_grad():
            z = torch.zeros(BATCH, c.model.z_dim)
            if c.model.arch == "bigan":
                g(z, torch.zeros(BATCH, dtype=torch.long), None)
            else:
                g(z, torch.zeros(BATCH, dtype=torch.long))

    every = max(c.loss.penalty_every, 1)
    penalised = count_flops(d_update(float(every)))
    plain = count_flops(d_update(0.0)) if every > 1 else penalised
    return StepFlops(
        d_update=(penalised + (every - 1) * plain) / every / BATCH,
        g_update=count_flops(g_update) / BATCH,
        g_forward=count_flops(g_forward) / BATCH,
        d_steps=c.optim.d_steps,
        g_steps=c.optim.g_steps,
        grad_params=params["g"] + params["d"],
        g_params=params["g"],
        d_params=params["d"],
    )
