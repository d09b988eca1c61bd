"""The training loop: the same code on one process and on N ranks (torchrun, accelerate launch,
srun with RANK/WORLD_SIZE exported), through accelerate.

Determinism: every random draw of step s on rank r comes from a generator seeded with
(seed, s, r, purpose), and the loader's order is a pure function of (seed, epoch, world size), so
a run resumed from a checkpoint repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, gather_object

from hpcgan.atomic import write_json
from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.errors import UserError
from hpcgan.models.augment import augment
from hpcgan.models.ema import update_ema
from hpcgan.train.checkpoint import latest_valid, load_checkpoint, save_checkpoint
from hpcgan.train.config import RunConfig, networks_for
from hpcgan.train.gan_steps import discriminator_loss, generator_loss
from hpcgan.train.run_outputs import MetricsLog, save_grid

PURPOSE_D, PURPOSE_G, PURPOSE_AUG = 1, 2, 3
SAMPLE_GRID = 64  # images in each sample grid


class Trainer:
    def __init__(self, config: RunConfig, run_dir: Path, resume: str = "auto") -> None:
        self.config, self.run_dir = config, Path(run_dir)
        self.acc = _accelerator(config)
        self.rank, self.world = self.acc.process_index, self.acc.num_processes
        self.device = self.acc.device
        shard_set = ShardSet.open(config.data)
        if shard_set.image_size != config.model.resolution:
            raise UserError(
                f"--data {config.data}: images are {shard_set.image_size} px, --gan {config.gan} "
                f"trains at {config.model.resolution} px (override model.resolution or re-shard)"
            )
        self.classes = shard_set.classes
        self.num_classes = len(self.classes)

        # Construct networks: the same seed on every rank gives the same initial weights.
        torch.manual_seed(config.seed)
        g, d = networks_for(config, self.num_classes)
        self.ema = copy.deepcopy(g).eval().requires_grad_(False).to(self.device) if config.train.ema else None
        opt_g, opt_d = _optimizer(config, g, "g"), _optimizer(config, d, "d")
        self.g, self.d, self.opt_g, self.opt_d = self.acc.prepare(g, d, opt_g, opt_d)
        self.loader = ShardLoader(
            shard_set,
            config.train.batch_size,
            seed=config.seed,
            rank=self.rank,
            world_size=self.world,
            num_workers=config.train.num_workers,
        )
        self.step = 0
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.resumed_from = self._resume(resume)
        if self.acc.is_main_process:
            write_json(self.run_dir / "config.json", config.to_dict())
        self.metrics = MetricsLog(self.run_dir, self.acc.is_main_process)
        fixed = torch.Generator(device="cpu").manual_seed(config.seed)
        self.fixed_z = torch.randn(SAMPLE_GRID, config.model.z_dim, generator=fixed)
        self.fixed_labels = torch.arange(SAMPLE_GRID) % max(self.num_classes, 1)  # classes in fixed columns

    # -- the loop -------------------------------------------------------------------------------

    def train(self) -> None:
        c = self.config
        batches = self._batches()
        started, images_done = time.perf_counter(), 0
        while self.step < c.train.steps:
            self._set_lr()
            for k in range(c.optim.d_steps):
                stats_d = self._d_update(next(batches), k)
                images_done += c.train.batch_size
            for k in range(c.optim.g_steps):
                stats_g = self._g_update(k)
            if self.ema is not None:
                update_ema(self.ema, self.acc.unwrap_model(self.g), c.train.ema, self.step, c.train.ema_rampup)
            self.step += 1
            if self.step % c.train.log_every == 0 or self.step == c.train.steps:
                rate = images_done * self.world / (time.perf_counter() - started)
                self._log(stats_d, stats_g, rate)
            if c.train.sample_every and self.step % c.train.sample_every == 0:
                self.save_samples()
            if c.checkpoint.every and self.step % c.checkpoint.every == 0:
                self.save_checkpoint()
        if not (c.checkpoint.every and self.step % c.checkpoint.every == 0):  # else just saved
            self.save_checkpoint()
        self.save_samples()
        self.metrics.close()

    def _batches(self):
        while True:
            yield from self.loader

    def _d_update(self, batch, k: int):
        images, labels = batch
        real = images.to(self.device).float() / 127.5 - 1
        labels = labels.to(self.device)
        gen = self._generator(PURPOSE_D, k)
        if self.config.train.augment:
            real = augment(real, self.config.train.augment, self._generator(PURPOSE_AUG, k))
        with self.acc.autocast():
            loss, stats = discriminator_loss(self.config, self.g, self.d, real, labels, self.num_classes, gen)
        self.acc.backward(loss)
        self._clip(self.d)
        self.opt_d.step()
        self.opt_d.zero_grad(set_to_none=True)
        if self.config.optim.weight_clip:
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-self.config.optim.weight_clip, self.config.optim.weight_clip)
        return stats

    def _g_update(self, k: int):
        d_module = self.acc.unwrap_model(self.d)
        d_module.requires_grad_(False)  # the G step must not touch D
        try:
            with self.acc.autocast():
                loss, stats = generator_loss(
                    self.config,
                    self.g,
                    d_module,
                    self.config.train.batch_size,
                    self.num_classes,
                    self._generator(PURPOSE_G, k),
                    self.device,
                )
            self.acc.backward(loss)
            self._clip(self.g)
            self.opt_g.step()
            self.opt_g.zero_grad(set_to_none=True)
        finally:
            d_module.requires_grad_(True)
        return stats

    def _clip(self, model) -> None:
        if self.config.optim.grad_clip:
            self.acc.clip_grad_norm_(model.parameters(), self.config.optim.grad_clip)

    def _generator(self, purpose: int, k: int) -> torch.Generator:
        seed = np.random.SeedSequence([self.config.seed, self.step, self.rank, purpose, k]).generate_state(1)[0]
        return torch.Generator(device=self.device).manual_seed(int(seed))

    def _set_lr(self) -> None:
        o = self.config.optim
        scale = o.finetune_scale if o.finetune_from and self.step >= o.finetune_from else 1.0
        for opt, lr in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    def _log(self, stats_d, stats_g, rate: float) -> None:
        values = torch.tensor(
            [stats_d.loss, stats_g.loss, stats_d.real_acc, stats_d.fake_acc, stats_d.penalty], device=self.device
        )
        values = self.acc.reduce(values, reduction="mean").tolist()  # every rank takes part
        self.metrics.write({
            "step": self.step, "loss_d": values[0], "loss_g": values[1], "d_real_acc": values[2],
            "d_fake_acc": values[3], "penalty": values[4], "images_per_s": rate,
            "lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"],
            "epoch": self.loader.position.epoch, "world_size": self.world,
        })  # fmt: skip

    # -- outputs --------------------------------------------------------------------------------

    @torch.no_grad()
    def save_samples(self) -> None:
        if not self.acc.is_main_process:
            return
        g = self.ema if self.ema is not None else self.acc.unwrap_model(self.g)
        was_training = g.training
        g.eval()
        images = g(self.fixed_z.to(self.device), self.fixed_labels.to(self.device))
        g.train(was_training)
        save_grid(images, self.run_dir / "samples" / f"step-{self.step:06d}.png")

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "config_hash": self.config.hash(),
            "config": self.config.to_dict(),
            "g": self.acc.unwrap_model(self.g).state_dict(),
            "d": self.acc.unwrap_model(self.d).state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": gather_object([_rng_states()]),  # one entry per rank
            "world_size": self.world,
            "classes": self.classes,
        }

    def save_checkpoint(self) -> None:
        """All ranks call this together; rank 0 writes (weights and optimisers are identical across
        ranks, the RNG states are gathered)."""
        state = self.state()
        if self.acc.is_main_process:
            save_checkpoint(self.run_dir, self.step, state, self.config.checkpoint.keep)
        self.acc.wait_for_everyone()

    def _resume(self, resume: str) -> Path | None:
        if resume == "none":
            return None
        if resume == "auto":
            found = latest_valid(self.run_dir)
            if found is None:
                return None
            path, state = found
        else:
            path = Path(resume)
            state = load_checkpoint(path)
        if state["config_hash"] != self.config.hash():
            raise UserError(
                f"{path}: saved with another configuration (hash {state['config_hash']}, this run "
                f"{self.config.hash()}); use a new --run-dir or the same settings"
            )
        self.acc.unwrap_model(self.g).load_state_dict(state["g"])
        self.acc.unwrap_model(self.d).load_state_dict(state["d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        if state["world_size"] == self.world:
            self.loader.load_state_dict(state["loader"])
        else:
            # Another world size cannot repeat the same batches: continue from the global sample
            # count instead (documented as not bit-identical).
            self.loader.seek_global_samples(int(state["loader"]["samples_seen"]))
        rng = state["rng"]
        _set_rng_states(rng[self.rank] if self.rank < len(rng) else rng[0])
        return path


def _accelerator(config: RunConfig) -> Accelerator:
    cuda = torch.cuda.is_available()
    precision = config.train.precision
    if precision == "auto":
        precision = "bf16" if cuda else "fp32"  # bf16 autocast is slower than fp32 on CPUs without AMX
    if precision == "fp16":
        raise UserError("train.precision=fp16 is not supported yet; use bf16 (or fp32)")
    mixed = {"fp32": "no", "bf16": "bf16"}.get(precision)
    if mixed is None:
        raise UserError(f"train.precision={precision}: expected auto, fp32, bf16 or fp16")
    # broadcast_buffers=False: D's BatchNorm buffers change in forward; DDP re-broadcasting them
    # between D's forward and backward fails ("modified by an inplace operation").
    acc = Accelerator(
        cpu=not cuda, mixed_precision=mixed, kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)]
    )
    expected = int(os.environ.get("WORLD_SIZE", "1"))
    if acc.num_processes != expected:
        raise UserError(
            f"WORLD_SIZE={expected} but accelerate started {acc.num_processes} process(es); "
            "on CPU, launch with torchrun or `accelerate launch --multi_gpu`"
        )
    return acc


def _optimizer(config: RunConfig, model, which: str) -> torch.optim.Optimizer:
    o = config.optim
    lr = o.lr_g if which == "g" else o.lr_d
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(o.beta1, o.beta2))
    if o.name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=lr)
    raise UserError(f"optim.name={o.name}: expected adam or rmsprop")


def _rng_states() -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
