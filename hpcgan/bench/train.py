"""`python -m hpcgan.bench train`: images/s of the Trainer against a plain PyTorch loop on the same
model, loss and batch, in one run; the model's FLOPs per image and the FLOP/s each loop achieves.

What is compared, and why it is fair:

- The plain loop is the seeds' notebook loop (the PyTorch DCGAN example's shape): one G forward
  per iteration, whose output is detached for the D step and then reused for the G step; D on
  real and on fake in two passes; D keeps requires_grad in the G step, so its weight gradients
  are computed and thrown away, as notebooks do; Adam (or RMSprop) with PyTorch's defaults besides
  the preset's lr and betas; no EMA, no logging, no checkpoints. It builds the same G and D
  (`networks_for`, same seed) and calls the same loss and penalty functions
  (`hpcgan.models.losses`), so the math per image is the same. The two do not spend FLOPs
  identically (ours draws a fresh latent for the G step, a second G forward; it freezes D there,
  saving D's weight gradients), so each loop's FLOPs are counted with torch's FlopCounterMode
  over one of its own steps, in its own process, and printed side by side.
- Data: the plain loop reads the very same images, decoded once and preloaded in memory, so
  loading costs it nothing; ours reads them through its ShardLoader with its default workers, as
  training does. Any loader cost counts against ours.
- Ours is the real Trainer, through its public loop: `train(on_step=...)`, whose callback pauses
  it after each chunk while the other loops take their turns. Checkpoints and sample grids are
  off (they are not per-step costs); EMA, logging, gradient norms and the divergence check stay on.
- Each loop runs in its own spawned process with the same torch thread count, which keeps autocast
  settings, compile caches, oneDNN primitive caches and allocator state apart. The processes take
  turns, one chunk of --steps steps at a time (order reversed every other round), while the others
  wait idle, so drifts in the machine's load hit every loop alike; the warm-up chunk is not timed. A
  loop's rate is its best round: load from other processes only ever adds time, and on a shared
  machine it comes in bursts that can cover most rounds of a loop. The median over rounds of the
  ratio within a round (plain and ours always run back to back) is in the JSON too, as
  `speedup_paired_median`.

Rows: plain; ours with the default config; ours with each speed option toggled, so the table
shows what each gives; and with --compile, the plain loop under torch.compile (its compile time
is in the warm-up column). The last stdout line is one JSON object; the table goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from hpcgan.console import console
from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.data.phantom import write_phantom_shards
from hpcgan.data.shard_options import SIZES, ShardOptions
from hpcgan.errors import UserError
from hpcgan.models.augment import augment
from hpcgan.models.losses import RELATIVISTIC, d_loss, g_loss, gradient_penalty, zero_centred_penalties
from hpcgan.train.config import RunConfig, apply_overrides, networks_for
from hpcgan.train.presets import preset

TARGETS = {"overhead": 0.95, "speedup": 1.3}  # ours / plain: at most 5% slower; then 30% faster
READY_TIMEOUT = 600.0  # s for a loop process to import torch and build its loop (a loaded 2-core machine)


@dataclass(frozen=True)
class Variant:
    """One row: which loop, and the config overrides on top of the bench's base config."""

    name: str
    kind: str  # "ours" | "plain"
    overrides: tuple[str, ...] = ()
    compiled: bool = False  # plain loop only: G and D through torch.compile


@dataclass(frozen=True)
class Settings:
    gan: str
    base: tuple[str, ...]  # overrides every loop shares (batch size, resolution)
    data: str
    threads: int


@dataclass
class Row:
    variant: Variant
    warmup_s: float
    rates: list[float]  # images/s, one per round

    @property
    def rate(self) -> float:
        """The best round (the least disturbed by other processes)."""
        return max(self.rates)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gan", default="dcgan64", help="preset (default dcgan64)")
    parser.add_argument("--batch-size", type=int, default=None, help="per step (default: the preset's)")
    parser.add_argument("--resolution", type=int, default=None, help="px, overrides the preset's (e.g. 32 for CI)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per loop per round")
    parser.add_argument("--repeats", type=int, default=8, help="rounds (each loop takes one turn per round)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per loop before the rounds")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads of every loop")
    parser.add_argument("--compile", action="store_true", help="add the plain loop under torch.compile (slow)")


def run(args: argparse.Namespace) -> int:
    """Images/s and FLOP/s of the Trainer vs a plain PyTorch loop, same model, loss and batch."""
    config, base = _check(args)
    variants = _variants(config, args.compile)
    with tempfile.TemporaryDirectory(prefix="hpcgan-bench-train-") as tmp, _progress() as progress:
        task = progress.add_task("phantom shards", total=None)
        data = _phantoms(Path(tmp) / "shards", config)
        settings = Settings(args.gan, base, str(data), args.threads)
        progress.update(task, description=f"starting {len(variants)} loop processes")
        with _loops(variants, settings, Path(tmp)) as loops:
            progress.update(task, total=len(variants) * (args.repeats + 1), completed=0)
            rows = [Row(v, 0.0, []) for v in variants]
            for row, loop in zip(rows, loops, strict=True):
                progress.update(task, description=f"warm-up: {row.variant.name}")
                row.warmup_s = loop.call("run", args.warmup)
                progress.advance(task)
            flops = {kind: _first(loops, variants, kind).call("flops", 1) for kind in ("ours", "plain")}
            for r in range(args.repeats):
                order = list(zip(rows, loops, strict=True))
                for row, loop in order if r % 2 == 0 else order[::-1]:
                    progress.update(task, description=f"round {r + 1}/{args.repeats}: {row.variant.name}")
                    row.rates.append(loop.images_per_step * args.steps / loop.call("run", args.steps))
                    progress.advance(task)
    result = summary(rows, flops, config, args)
    print_table(rows, flops, result)
    print(json.dumps(result), flush=True)
    return 0


# -- options and variants -----------------------------------------------------------------------


def _check(args: argparse.Namespace) -> tuple[RunConfig, tuple[str, ...]]:
    """The base config, or a one-line UserError for any bad option."""
    for option, value, least in (("--steps", args.steps, 1), ("--repeats", args.repeats, 1)):
        if value < least:
            raise UserError(f"{option} {value}: expected at least {least}")
    if args.warmup < 1:
        raise UserError(f"--warmup {args.warmup}: expected at least 1 (the first steps build kernels)")
    if args.threads < 1:
        raise UserError(f"--threads {args.threads}: expected at least 1")
    base: list[str] = []
    if args.batch_size is not None:
        if args.batch_size < 2:
            raise UserError(f"--batch-size {args.batch_size}: expected at least 2 (BatchNorm needs 2 samples)")
        base.append(f"train.batch_size={args.batch_size}")
    if args.resolution is not None:
        if args.resolution not in SIZES:
            raise UserError(f"--resolution {args.resolution}: expected one of {', '.join(map(str, SIZES))}")
        base.append(f"model.resolution={args.resolution}")
    config = bench_config(args.gan, tuple(base))
    networks_for(config, 2)  # a resolution the architecture cannot build is a UserError here
    _plain_supports(config)
    return config, tuple(base)


def bench_config(gan: str, overrides: tuple[str, ...]) -> RunConfig:
    """The preset with the bench's overrides; checkpoints and sample grids off (not per-step costs)."""
    config = apply_overrides(preset(gan), list(overrides))
    config.train.sample_every, config.checkpoint.every = 0, 0
    return config


def _variants(config: RunConfig, compiled: bool) -> list[Variant]:
    """Plain, ours, and ours with each speed option flipped from its default."""
    variants = [Variant("plain (seeds' loop)", "plain"), Variant("ours (default config)", "ours")]
    toggles = [f"train.channels_last={not config.train.channels_last}".lower()]
    if config.optim.name == "adam":
        toggles.append(f"optim.fused={not config.optim.fused}".lower())
    # What "auto" does not pick here: bf16 autocast on CPU (a win with AMX, a loss without), fp32 on CUDA.
    toggles.append("train.precision=fp32" if torch.cuda.is_available() else "train.precision=bf16")
    variants += [Variant(f"ours, {t}", "ours", (t,)) for t in toggles]
    if compiled:
        variants.append(Variant("plain + torch.compile", "plain", compiled=True))
    return variants


def _first(loops: list[_LoopProcess], variants: list[Variant], kind: str) -> _LoopProcess:
    return next(loop for loop, v in zip(loops, variants, strict=True) if v.kind == kind)


def _phantoms(out: Path, config: RunConfig) -> Path:
    """Enough phantoms for several batches in several shards, at the model's resolution."""
    batch = config.train.batch_size
    options = ShardOptions(size=config.model.resolution, shard_size=str(2 * batch), workers=2)
    write_phantom_shards(out, 8 * batch, options)
    return out


@contextmanager
def _progress() -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # Slow refresh: the bar's thread shares the cores with what is measured. Transient, so that an
    # error leaves just its one line.
    with Progress(*columns, console=console, refresh_per_second=2, transient=True) as progress:
        yield progress


# -- loop processes -----------------------------------------------------------------------------


class _LoopProcess:
    """A spawned process that builds one loop and then serves commands one at a time (see
    _Server); it sits idle, blocked on its pipe, while the others run."""

    def __init__(self, variant: Variant, settings: Settings, run_dir: Path) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked OpenMP or accelerate state
        self.conn, child = context.Pipe()
        # Not a daemon: the Trainer's loader starts worker processes of its own.
        self.process = context.Process(target=_serve, args=(child, variant, settings, run_dir), daemon=False)
        self.process.start()
        child.close()
        self.images_per_step = 0

    def wait_ready(self) -> None:
        self.images_per_step = self._reply(READY_TIMEOUT)

    def call(self, *command: Any) -> Any:
        self.conn.send(command)
        return self._reply(None)

    def _reply(self, timeout: float | None) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"a loop process sent nothing for {timeout} s")
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"a loop process died (exit code {self.process.exitcode})") from None
        if status == "UserError":
            raise UserError(value)
        if status != "ok":
            raise RuntimeError(f"a loop process failed: {status}: {value}")
        return value

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass  # already gone
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)


@contextmanager
def _loops(variants: list[Variant], settings: Settings, tmp: Path) -> Iterator[list[_LoopProcess]]:
    loops: list[_LoopProcess] = []
    try:
        for i, variant in enumerate(variants):
            loops.append(_LoopProcess(variant, settings, tmp / f"run-{i}"))
        for loop in loops:  # started together: imports overlap
            loop.wait_ready()
        yield loops
    finally:
        for loop in loops:
            loop.stop()


def _serve(conn: Connection, variant: Variant, settings: Settings, run_dir: Path) -> None:
    """The loop process: build the loop, report images per step, then step on command until None."""
    try:
        torch.set_num_threads(settings.threads)
        config = bench_config(settings.gan, settings.base + variant.overrides)
        server = _Server(conn, config.train.batch_size * config.optim.d_steps)
        if variant.kind == "ours":
            _serve_ours(server, config, settings, run_dir)
        else:
            _serve_plain(server, config, settings, variant.compiled)
    except _Stop:
        pass
    except UserError as exc:
        conn.send(("UserError", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send((type(exc).__name__, str(exc)))


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker: that one's backward hooks break
    torch.autograd.grad, which the gradient penalty and R1 call. Totals are unchanged."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *args: object) -> None:
        pass


def flop_counter() -> FlopCounterMode:
    """torch's FlopCounterMode, counting totals only (see _GlobalOnly)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter


class _Stop(Exception):
    """The parent is done with this loop."""


class _Server:
    """Called after every step of a loop: counts the steps of the current command down, answers
    it when done, and blocks for the next one. Commands: ("run", n) -> seconds for the next n steps;
    ("flops", n) -> FLOPs per image over the next n steps (forward and backward of every pass)."""

    def __init__(self, conn: Connection, images_per_step: int) -> None:
        self.conn, self.images_per_step = conn, images_per_step
        self.steps = self.left = 0
        self.start, self.counter = 0.0, None

    def begin(self) -> None:
        self.conn.send(("ok", self.images_per_step))
        self._next()

    def after_step(self, *_: Any) -> None:
        self.left -= 1
        if self.left > 0:
            return
        reply = time.perf_counter() - self.start
        if self.counter is not None:
            self.counter.__exit__(None, None, None)
            reply, self.counter = self.counter.get_total_flops() / self.images_per_step / self.steps, None
        self.conn.send(("ok", reply))
        self._next()

    def _next(self) -> None:
        command = self.conn.recv()
        if command is None:
            raise _Stop
        what, self.steps = command
        self.left = self.steps
        if what == "flops":
            self.counter = flop_counter()
            self.counter.__enter__()
        self.start = time.perf_counter()


def _serve_ours(server: _Server, config: RunConfig, settings: Settings, run_dir: Path) -> None:
    """The Trainer itself, through its public loop: `train(on_step=...)` pauses after each step
    while the other loops take their turns."""
    from hpcgan.train.trainer import Trainer  # torch and accelerate's state only in this process

    config.data, config.train.steps = settings.data, 10**9  # ended by the parent, never by the count
    trainer = Trainer(config, run_dir, resume="none")
    server.begin()
    trainer.train(on_step=server.after_step)


def _serve_plain(server: _Server, config: RunConfig, settings: Settings, compiled: bool) -> None:
    shard_set = ShardSet.open(settings.data)
    images, labels = preload(shard_set, config.train.batch_size)
    loop = PlainLoop(config, images, labels, len(shard_set.classes), compiled)
    server.begin()
    while True:
        loop.step()
        server.after_step()


# -- the plain loop -----------------------------------------------------------------------------


def preload(shard_set: ShardSet, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (full-batch) train image decoded once: uint8 [N, 1, S, S] and int64 labels [N]."""
    batches = list(ShardLoader(shard_set, batch_size, seed=0, rank=0, world_size=1, num_workers=0))
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def _plain_supports(config: RunConfig) -> None:
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
    """The seeds' notebook loop on the given images (see the module docstring for what differs)."""

    def __init__(
        self, config: RunConfig, images: torch.Tensor, labels: torch.Tensor, num_classes: int, compiled: bool = False
    ) -> None:
        self.c, self.images, self.labels, self.num_classes = config, images, labels, max(num_classes, 1)
        torch.manual_seed(config.seed)
        self.g, self.d = networks_for(config, num_classes)
        o = config.optim
        if o.name == "adam":
            self.opt_g = torch.optim.Adam(self.g.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
            self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2))
        else:
            self.opt_g = torch.optim.RMSprop(self.g.parameters(), lr=o.lr_g)
            self.opt_d = torch.optim.RMSprop(self.d.parameters(), lr=o.lr_d)
        self.net_g, self.net_d = (torch.compile(self.g), torch.compile(self.d)) if compiled else (self.g, self.d)
        self.gen = torch.Generator().manual_seed(config.seed)  # DiffAugment's draws
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
        return torch.randn(n, self.c.model.z_dim), torch.randint(0, self.num_classes, (n,))

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
            alpha = torch.rand(len(real), 1, 1, 1)
            mixed = (alpha * real.detach() + (1 - alpha) * fake).requires_grad_(True)
            loss = loss + c.loss.gp_weight * gradient_penalty(self.net_d(mixed, labels)[0], mixed)
        for gamma, logits, x in ((c.loss.r1_gamma, real_logits, real), (c.loss.r2_gamma, fake_logits, fake)):
            if gamma:
                loss = loss + gamma / 2 * zero_centred_penalties(logits, [x])[0]
        return loss


# -- results ------------------------------------------------------------------------------------


def summary(rows: list[Row], flops: dict[str, float], config: RunConfig, args: argparse.Namespace) -> dict[str, Any]:
    """The final JSON line."""
    plain, ours = rows[0], rows[1]
    ours_rows = [r for r in rows if r.variant.kind == "ours"]
    best = max(ours_rows, key=lambda r: r.rate)
    speedup = ours.rate / plain.rate
    return {
        "bench": "train",
        "gan": args.gan,
        "resolution": config.model.resolution,
        "batch_size": config.train.batch_size,
        "threads": args.threads,
        "steps": args.steps,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "flops_per_image": round(flops["ours"]),
        "plain_flops_per_image": round(flops["plain"]),
        "images_per_s": {r.variant.name: round(r.rate, 2) for r in rows},
        "images_per_s_median": {r.variant.name: round(statistics.median(r.rates), 2) for r in rows},
        "images_per_s_rounds": {r.variant.name: [round(x, 2) for x in r.rates] for r in rows},
        "gflops_per_s": {r.variant.name: round(r.rate * flops[r.variant.kind] / 1e9, 1) for r in rows},
        "vs_plain": {r.variant.name: round(r.rate / plain.rate, 3) for r in rows},
        "vs_ours": {r.variant.name: round(r.rate / ours.rate, 3) for r in rows},
        "warmup_s": {r.variant.name: round(r.warmup_s, 1) for r in rows},
        "speedup": round(speedup, 3),
        "best": best.variant.name,
        "speedup_best": round(best.rate / plain.rate, 3),
        "speedup_paired_median": round(_paired(ours, plain), 3),
        "targets": TARGETS,
        "meets_overhead": speedup >= TARGETS["overhead"],
        "meets_speedup": speedup >= TARGETS["speedup"],
    }


def _paired(row: Row, baseline: Row) -> float:
    """Median over rounds of row / baseline within the round (both measured moments apart)."""
    return statistics.median(a / b for a, b in zip(row.rates, baseline.rates, strict=True))


def print_table(rows: list[Row], flops: dict[str, float], result: dict[str, Any]) -> None:
    """A table for people, on stderr: stdout carries only the JSON line."""
    table = Table(
        title=f"{result['gan']} at {result['resolution']} px, batch {result['batch_size']}, "
        f"{result['threads']} threads: images/s, best of {result['repeats']} rounds of {result['steps']} steps",
        caption=f"GFLOP per image: ours {flops['ours'] / 1e9:.3f}, plain {flops['plain'] / 1e9:.3f} "
        "(one D step + one G step, forward and backward);\n"
        f"vs plain = best rounds' ratio; ours / plain targets >= {TARGETS['overhead']}, then >= "
        f"{TARGETS['speedup']} (paired-round median: {result['speedup_paired_median']:.2f});\n"
        "GFLOP/s at the best round; warm-up = the first untimed steps, compilation included",
    )
    for header in ("loop", "images/s", "median", "vs plain", "vs ours", "GFLOP/s", "warm-up s"):
        table.add_column(header, justify="left" if header == "loop" else "right")
    for row in rows:
        name = row.variant.name
        ratio = result["vs_plain"][name]
        colour = "green" if ratio >= TARGETS["speedup"] else "yellow" if ratio >= TARGETS["overhead"] else "red"
        table.add_row(
            name,
            f"{row.rate:.1f}",
            f"{statistics.median(row.rates):.1f}",
            f"[{colour}]{ratio:.2f}[/]",
            f"{result['vs_ours'][name]:.2f}",
            f"{result['gflops_per_s'][name]:.1f}",
            f"{row.warmup_s:.1f}",
        )
    out = console if console.is_terminal else Console(stderr=True, width=140)
    out.print(table)
