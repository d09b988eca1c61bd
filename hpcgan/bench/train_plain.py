"""The plain reference loop of `python -m hpcgan.bench train`: the seeds' notebook GAN loop on the
same model, loss and batch as ours, on images preloaded in memory (what it does and does not do
alike is in hpcgan/bench/train.py's module docstring)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.errors import UserError
from hpcgan.models.augment import augment
from hpcgan.models.losses import RELATIVISTIC, d_loss, g_loss, gradient_penalty, zero_centred_penalties
from hpcgan.train.config import RunConfig, networks_for


def preload(shard_set: ShardSet, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (full-batch) train image decoded once: uint8 [N, 1, S, S] and int64 labels [N]."""
    batches = list(ShardLoader(shard_set, batch_size, seed=0, rank=0, world_size=1, num_workers=0))
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def plain_supports(config: RunConfig) -> None:
    """The plain loop implements what the presets use; anything else would compare unequal work."""
    c = config
    extras = {
        "loss.label_smoothing": c.loss.label_smoothing,
        "loss.label_noise": c.loss.label_noise,
        "train.augment": c.train.augment,
        "optim.grad_clip": c.optim.grad_clip,
        "optim.g_steps": c.optim.g_steps != 1,
        "model.arch=bigan": c.model.arch == "bigan",
    }
    used = [key for key, value in extras.items() if value]
    if used:
        raise UserError(f"--gan {c.gan}: the plain loop does not implement {', '.join(used)}")


class PlainLoop:
    """The seeds' notebook loop on the given images (see hpcgan/bench/train.py's module docstring
    for what differs)."""

    def __init__(
        self, config: RunConfig, images: torch.Tensor, labels: torch.Tensor, num_classes: int, compiled: bool = False
    ) -> None:
        # On the GPU when there is one, as ours: the images are preloaded into its memory.
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.c, self.num_classes = config, max(num_classes, 1)
        self.images, self.labels = images.to(self.device), labels.to(self.device)
        torch.manual_seed(config.seed)
        g, d = networks_for(config, num_classes)
        self.g, self.d = g.to(self.device), d.to(self.device)
        o = config.optim
        if o.name == "adam":
            self.opt_g = torch.optim.Adam(self.g.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
            self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2))
        else:
            self.opt_g = torch.optim.RMSprop(self.g.parameters(), lr=o.lr_g)
            self.opt_d = torch.optim.RMSprop(self.d.parameters(), lr=o.lr_d)
        self.net_g, self.net_d = (torch.compile(self.g), torch.compile(self.d)) if compiled else (self.g, self.d)
        self.gen = torch.Generator(self.device).manual_seed(config.seed)  # DiffAugment's draws
        self.order, self.cursor = torch.randperm(len(images)), 0

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.c.train.batch_size
        if self.cursor + n > len(self.order):
            self.order, self.cursor = torch.randperm(len(self.images)), 0
        index = self.order[self.cursor : self.cursor + n]
        self.cursor += n
        return self.images[index].float() / 127.5 - 1, self.labels[index]

    def latent(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.c.train.batch_size
        return (
            torch.randn(n, self.c.model.z_dim, device=self.device),
            torch.randint(0, self.num_classes, (n,), device=self.device),
        )

    def step(self) -> None:
        c = self.c
        for _ in range(c.optim.d_steps):
            real, labels = self.batch()
            z, fake_labels = self.latent()
            fake = self.net_g(z, fake_labels)
            self.opt_d.zero_grad()
            self.d_loss(real, labels, fake.detach(), fake_labels).backward()
            self.opt_d.step()
            if c.optim.weight_clip:
                with torch.no_grad():
                    for p in self.d.parameters():
                        p.clamp_(-c.optim.weight_clip, c.optim.weight_clip)
        if c.optim.d_steps > 1:  # WGAN notebooks: a fresh batch of fakes for the G step
            z, fake_labels = self.latent()
            fake = self.net_g(z, fake_labels)
        self.opt_g.zero_grad()
        if c.train.diffaugment:
            fake = augment(fake, c.train.diffaugment, self.gen)
        logits, class_logits = self.net_d(fake, fake_labels)
        real_logits = None
        if c.loss.kind in RELATIVISTIC:  # RpGAN pairs each fake with a real image
            with torch.no_grad():
                real_logits = self.net_d(real, labels)[0]
        loss = g_loss(c.loss.kind, logits, real_logits)
        if class_logits is not None:
            loss = loss + c.loss.aux_weight * F.cross_entropy(class_logits, fake_labels)
        loss.backward()
        self.opt_g.step()

    def d_loss(
        self, real: torch.Tensor, labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor
    ) -> torch.Tensor:
        c = self.c
        if c.train.diffaugment:
            real, fake = augment(real, c.train.diffaugment, self.gen), augment(fake, c.train.diffaugment, self.gen)
        if c.loss.r1_gamma:
            real = real.requires_grad_(True)
        if c.loss.r2_gamma:
            fake = fake.detach().requires_grad_(True)
        real_logits, real_class = self.net_d(real, labels)
        fake_logits, fake_class = self.net_d(fake, fake_labels)
        loss = d_loss(c.loss.kind, real_logits, fake_logits)
        if real_class is not None:
            loss = loss + c.loss.aux_weight * (
                F.cross_entropy(real_class, labels) + F.cross_entropy(fake_class, fake_labels)
            )
        if c.loss.gp_weight:
            alpha = torch.rand(len(real), 1, 1, 1, device=real.device)
            mixed = (alpha * real.detach() + (1 - alpha) * fake).requires_grad_(True)
            loss = loss + c.loss.gp_weight * gradient_penalty(self.net_d(mixed, labels)[0], mixed)
        for gamma, logits, x in ((c.loss.r1_gamma, real_logits, real), (c.loss.r2_gamma, fake_logits, fake)):
            if gamma:
                loss = loss + gamma / 2 * zero_centred_penalties(logits, [x])[0]
        return loss
