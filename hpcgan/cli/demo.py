"""`hpcgan demo`: the built-in default end to end, on CPU, with no download.

Phantom data -> shards -> inspection (counts and a contact sheet) -> a pass of the DDP loader ->
a few hundred steps of r3gan64, narrowed for a CPU -> sample grids, metrics and checkpoints in
demo/runs/r3gan64 -> the run's report page, demo/runs/r3gan64/report/index.html.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hpcgan.cli.data_commands import print_index_summary
from hpcgan.console import console, progress_bar, step_progress
from hpcgan.data.index import ShardSet
from hpcgan.data.inspect import contact_sheet, summarise
from hpcgan.data.shard_options import ShardOptions

DEMO_GAN = "r3gan64"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in default end to end (phantoms, no GPU, no download)")
    p.add_argument("--out", type=Path, default=Path("demo"), help="folder for everything the demo writes")
    p.add_argument("--n", type=int, default=2000, help="phantom images")
    p.add_argument("--size", type=int, default=64, help="image side in px")
    p.add_argument("--steps", type=int, default=300, help="training steps (0 skips training)")
    p.add_argument("--gan", default=DEMO_GAN, help=f"preset (default {DEMO_GAN}, narrowed for a CPU)")
    p.add_argument("--width", type=int, default=None, help="channels of G's last and D's first block "
                   "(default: the demo's CPU width for the preset)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from hpcgan.data.loader import ShardLoader  # torch loads only when a command needs it
    from hpcgan.data.phantom import write_phantom_shards
    from hpcgan.train.presets import preset

    preset(args.gan)  # an unknown --gan is one line before anything is rendered
    started = time.perf_counter()
    shards = args.out / "shards" / f"phantom{args.size}"
    with progress_bar("1/4 rendering phantoms -> shards", total=args.n) as (advance, _):
        options = ShardOptions(size=args.size, shard_size="250", val_fraction=0.1, workers=args.workers)
        index = write_phantom_shards(shards, args.n, options, advance)
    print_index_summary(shards, index)

    shard_set = ShardSet.open(shards)
    for s in summarise(shard_set):
        console.print(f"2/4 inspect: {s.split}: {s.images} images in {s.shards} shards, {s.histogram}")
    sheet = contact_sheet(shard_set, args.out / "contact_sheet.png")
    console.print(f"    contact sheet: {sheet}")

    loader = ShardLoader(shard_set, batch_size=32, num_workers=args.workers, seed=0)
    t0, n, shape = time.perf_counter(), 0, ""
    for images, _labels in loader:
        n, shape = n + len(images), f"{tuple(images.shape)} {images.dtype}"
    rate = n / (time.perf_counter() - t0)
    console.print(f"3/4 loader: one epoch = {len(loader)} batches of {shape}, {rate:.0f} images/s")
    loader.close()

    if args.steps:
        from hpcgan.report.build import build_run_report

        run_dir = train_demo(args, shards)
        console.print(f"    sample grids: {run_dir / 'samples'}/, metrics: {run_dir / 'metrics.jsonl'}")
        report = build_run_report(run_dir)  # what a researcher opens first: samples over training, curves, events
        console.print(f"    report: {report.page}")
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; outputs in {args.out}/")
    return 0


def train_demo(args: argparse.Namespace, shards: Path) -> Path:
    from hpcgan.train.config import apply_overrides
    from hpcgan.train.presets import cpu_overrides, preset
    from hpcgan.train.trainer import Trainer  # torch and accelerate load only here

    config = apply_overrides(
        preset(args.gan),
        [
            f"model.resolution={args.size}",
            *cpu_overrides(args.gan, args.width),
            f"train.steps={args.steps}",
            "train.batch_size=32",
            f"train.num_workers={min(args.workers, 1)}",
            "train.ema_rampup=20",
            f"train.sample_every={max(args.steps // 3, 1)}",
            f"checkpoint.every={max(args.steps // 3, 1)}",
        ],
    )
    config.data = str(shards)
    run_dir = args.out / "runs" / args.gan
    trainer = Trainer(config, run_dir, resume="auto")
    with step_progress(f"4/4 training {args.gan}", args.steps, trainer.step) as update:
        trainer.train(lambda step, m: update(step, f"D {m['loss_d']:.2f} G {m['loss_g']:.2f}" if m else ""))
    metrics = trainer.last_metrics
    if not metrics:
        console.print(f"4/4 train: {run_dir} had already finished its {args.steps} steps")
        return run_dir
    console.print(
        f"4/4 train: {args.gan} {args.steps} steps, batch 32; last D loss {metrics['loss_d']:.3f}, "
        f"G loss {metrics['loss_g']:.3f}, {metrics['images_per_s']:.0f} images/s"
    )
    return run_dir
