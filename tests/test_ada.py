"""Adaptive discriminator augmentation: the transforms (never a mirror, differentiable, identity at
p = 0, repeatable) and the controller (p rises for a D that overfits, stays at 0 for one that
cannot tell real from fake), with a real R3GAN discriminator and the real loss code."""

import torch

from hpcgan.models.ada_pipeline import ada_augment
from hpcgan.models.r3gan import R3Discriminator, R3Generator
from hpcgan.train.ada_controller import AdaController
from hpcgan.train.config import apply_overrides
from hpcgan.train.fake_labels import FakeLabels
from hpcgan.train.gan_steps import discriminator_loss
from hpcgan.train.presets import preset


def _marker_image(n: int = 64, size: int = 32) -> torch.Tensor:
    """Dark images with a bright square in the left third (anatomy has a side)."""
    x = torch.full((n, 1, size, size), -1.0)
    x[:, :, 12:20, 2:10] = 1.0
    return x


def test_an_augmented_image_never_mirrors():
    x = _marker_image()
    out = ada_augment(x, 1.0, torch.Generator().manual_seed(0))
    # Intensity transforms keep each image's order of pixel values: the marker is its bright half.
    low, high = out.amin(dim=(1, 2, 3), keepdim=True), out.amax(dim=(1, 2, 3), keepdim=True)
    marker = (out > (low + high) / 2).float()
    columns = torch.arange(32.0).view(1, 1, 1, 32)
    centre = (marker * columns).sum(dim=(1, 2, 3)) / marker.sum(dim=(1, 2, 3))
    assert (centre < 12).all(), f"the marker crossed to the right: columns {centre.tolist()}"
    assert not torch.equal(out, x)


def test_p_zero_is_the_identity_and_draws_repeat():
    x = torch.randn(8, 1, 32, 32)
    assert torch.equal(ada_augment(x, 0.0, torch.Generator().manual_seed(1)), x)
    a = ada_augment(x, 0.5, torch.Generator().manual_seed(1))
    b = ada_augment(x, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_transforms_are_differentiable_at_p_one():
    x = torch.randn(4, 1, 32, 32, requires_grad=True)
    ada_augment(x, 1.0, torch.Generator().manual_seed(2)).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _config():
    return apply_overrides(preset("r3gan64"), ["model.resolution=32", "model.g_width=8", "model.d_width=8",
                                               "model.max_width=32", "model.blocks=1"])  # fmt: skip


def _feedback(d, g, real_pool: torch.Tensor, steps: int, train_d: bool, fake_from_real: bool) -> AdaController:
    """`steps` D steps of the real loss code, each one's signs fed to the controller (4 steps per adjustment,
    p from 0 to 1 in 64 images of this batch of 16: fast, to see the direction in a few steps)."""
    config = _config()
    controller = AdaController(target=0.6, interval=4, images_to_full=64 * 16)
    optimizer = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))
    labels = torch.zeros(len(real_pool), dtype=torch.long)
    for step in range(1, steps + 1):
        gen = torch.Generator().manual_seed(step)
        if fake_from_real:  # a generator that draws the data itself: D cannot know which is which
            shuffled = real_pool[torch.randperm(len(real_pool), generator=gen)]
            g = lambda z, labels, pool=shuffled: pool[: len(z)]  # noqa: E731
        loss, stats = discriminator_loss(config, g, d, real_pool, labels, FakeLabels(0), gen, ada_p=controller.p)
        if train_d:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        controller.observe(float(stats.real_signs), len(real_pool), step, len(real_pool))
    return controller


def test_p_rises_for_a_discriminator_that_overfits_16_images():
    torch.manual_seed(0)
    real = torch.rand(16, 1, 32, 32) * 2 - 1
    g, d = R3Generator(32, 64, 8, max_width=32, blocks=1), R3Discriminator(32, 8, max_width=32, blocks=1)
    controller = _feedback(d, g, real, steps=48, train_d=True, fake_from_real=False)
    assert controller.r_t > 0.6 and controller.p > 0.4, controller.state_dict()


def test_p_stays_at_zero_for_a_discriminator_that_cannot_tell():
    torch.manual_seed(0)
    real = torch.rand(16, 1, 32, 32) * 2 - 1
    d = R3Discriminator(32, 8, max_width=32, blocks=1)
    controller = _feedback(d, None, real, steps=48, train_d=False, fake_from_real=True)
    assert abs(controller.r_t) < 0.6 and controller.p < 0.1, controller.state_dict()


def test_controller_state_round_trips():
    a = AdaController(0.6, 4, 1000)
    for step in range(1, 10):
        a.observe(30.0, 32, step, 32)
    b = AdaController(0.6, 4, 1000)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() and 0 < a.p <= 1
