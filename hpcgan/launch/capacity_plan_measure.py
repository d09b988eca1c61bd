"""What `hpcgan plan` measures on this machine rather than assumes: the Inception network's FLOPs and
(--measure) the preset's real training speed on this CPU."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

from hpcgan.eval.inception import FIDInceptionV3
from hpcgan.launch.capacity_plan import Plan, PlanSettings
from hpcgan.train.checkpoint_size import checkpoint_bytes
from hpcgan.train.config import networks_for
from hpcgan.train.config_schema import RunConfig
from hpcgan.train.fake_labels import FakeLabels
from hpcgan.train.gan_steps import discriminator_loss, generator_loss
from hpcgan.train.optimizers import make_optimizer
from hpcgan.train.step_flops import count_flops, training_flops


def inception_flops(resolution: int) -> float:
    """FLOPs of FID's Inception on one grey image of `resolution` px (resized to 299 inside)."""
    return count_flops(lambda: FIDInceptionV3()(torch.zeros(1, 1, resolution, resolution, dtype=torch.uint8)))


@dataclass(frozen=True)
class CpuSpeed:
    images_per_s: float
    threads: int
    batch: int


def measure_cpu(config: RunConfig, batch: int = 2, steps: int = 2) -> CpuSpeed:
    """Real D and G updates of the preset (forward, backward, Adam) on this CPU, after one warm-up
    step: the images per second this machine trains at. No data loading: zeros stand in for images."""
    torch.manual_seed(0)
    g, d = networks_for(config, 0)
    opt_g, opt_d = make_optimizer(config.optim, g, "g"), make_optimizer(config.optim, d, "d")
    labels_of_fakes, gen = FakeLabels(0), torch.Generator().manual_seed(0)
    size = config.model.resolution
    real, labels = torch.zeros(batch, 1, size, size), torch.zeros(batch, dtype=torch.long)

    def step() -> None:
        for _ in range(config.optim.d_steps):
            opt_d.zero_grad(set_to_none=True)
            loss, _ = discriminator_loss(config, g, d, real, labels, labels_of_fakes, gen, 0.0, 1.0)
            loss.backward()
            opt_d.step()
        d.requires_grad_(False)
        for _ in range(config.optim.g_steps):
            opt_g.zero_grad(set_to_none=True)
            loss, _ = generator_loss(config, g, d, batch, labels_of_fakes, gen, torch.device("cpu"), real, labels)
            loss.backward()
            opt_g.step()
        d.requires_grad_(True)

    step()  # warm-up: allocations, oneDNN kernel choice (batch 2: BatchNorm in G needs two samples)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return CpuSpeed(steps * batch * config.optim.d_steps / seconds, torch.get_num_threads(), batch)


@functools.cache
def _inception_flops() -> float:
    return inception_flops(299)


def plan_for(config: RunConfig, settings: PlanSettings) -> Plan:
    """The plan for `config` on `settings`: the preset's FLOPs counted, Inception's counted, the
    checkpoint's size from the parameters (hpcgan/train/checkpoint_size.py)."""
    settings.check()
    flops = training_flops(config)
    return Plan(settings, flops, config.model.resolution, _inception_flops(),
                checkpoint_bytes(config, flops.g_params, flops.d_params))  # fmt: skip
