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

On CUDA a second table follows: sec/kimg (seconds per thousand real images shown to D) of ours with
the default config for dcgan and r3gan at 256 and 512 px on one GPU, at stylegan2-ada's one-GPU
batch (16 and 8), beside stylegan2-ada-pytorch's published V100 figures, as ratios. Each preset
runs alone on the GPU, one after the other, for the same warm-up, steps and rounds as above.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hpcgan.bench.train_plain import plain_supports
from hpcgan.bench.train_processes import LoopProcess, loop_processes
from hpcgan.bench.train_report import (
    KIMG_NOTE_CPU,
    KimgRow,
    Row,
    print_kimg_table,
    print_note,
    print_table,
    stylegan2_ada_batch,
    summary,
)
from hpcgan.bench.train_setup import Settings, Variant, bench_config
from hpcgan.console import console
from hpcgan.data.phantom import write_phantom_shards
from hpcgan.data.shard_options import SIZES, ShardOptions
from hpcgan.errors import UserError
from hpcgan.train.config import RunConfig, networks_for

# The presets timed against stylegan2-ada's table (its rows at 256 and 512 px).
KIMG_PRESETS = ("dcgan256", "r3gan256", "dcgan512", "r3gan512")


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
        with loop_processes(variants, settings, Path(tmp)) as loops:
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
        kimg = _kimg_rows(args, Path(tmp), progress) if torch.cuda.is_available() else None
    result = summary(rows, flops, config, args)
    result["sec_per_kimg"] = {row.gan: row.to_dict() for row in kimg} if kimg is not None else None
    print_table(rows, flops, result)
    if kimg is None:
        print_note(KIMG_NOTE_CPU)
    else:
        print_kimg_table(kimg, torch.cuda.get_device_name())
    print(json.dumps(result), flush=True)
    return 0


def _kimg_rows(args: argparse.Namespace, tmp: Path, progress: Progress) -> list[KimgRow]:
    """Ours (default config) of each KIMG_PRESETS on one GPU, alone, at stylegan2-ada's batch; a
    preset that does not fit the GPU's memory gets a row saying so rather than ending the bench."""
    rows = []
    for gan in KIMG_PRESETS:
        config = bench_config(gan, ())
        resolution = config.model.resolution
        batch = stylegan2_ada_batch(resolution)
        task = progress.add_task(f"sec/kimg: {gan}, phantom shards", total=args.repeats + 1)
        config.train.batch_size = batch
        data = _phantoms(tmp / f"kimg-{gan}", config)
        settings = Settings(gan, (f"train.batch_size={batch}",), str(data), args.threads)
        try:
            with loop_processes([Variant(gan, "ours")], settings, tmp / f"kimg-{gan}-run") as (loop,):
                progress.update(task, description=f"sec/kimg: {gan}")
                loop.call("run", args.warmup)
                progress.advance(task)
                rates = []
                for _ in range(args.repeats):
                    rates.append(loop.images_per_step * args.steps / loop.call("run", args.steps))
                    progress.advance(task)
            rows.append(KimgRow(gan, resolution, batch, max(rates)))
        except (RuntimeError, UserError) as exc:  # e.g. torch.OutOfMemoryError, reported by the loop process
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            rows.append(KimgRow(gan, resolution, batch, None, first[:80]))
        progress.remove_task(task)
    return rows


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
    plain_supports(config)
    return config, tuple(base)


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


def _first(loops: list[LoopProcess], variants: list[Variant], kind: str) -> LoopProcess:
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
