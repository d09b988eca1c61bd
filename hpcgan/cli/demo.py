"""`hpcgan demo`: the built-in default end to end, on CPU, with no download.

Phantom data -> shards -> inspection (counts and a contact sheet) -> a pass of the DDP loader.
Training, samples and metrics join here as the trainer lands.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hpcgan.cli.data_commands import print_index_summary
from hpcgan.cli.progress import console, progress_bar
from hpcgan.data.index import ShardSet
from hpcgan.data.inspect import contact_sheet, summarise
from hpcgan.data.loader import ShardLoader
from hpcgan.data.phantom import write_phantom_shards
from hpcgan.data.shard_options import ShardOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in default end to end (phantoms, no GPU, no download)")
    p.add_argument("--out", type=Path, default=Path("demo"), help="folder for everything the demo writes")
    p.add_argument("--n", type=int, default=2000, help="phantom images")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    shards = args.out / "shards" / f"phantom{args.size}"
    with progress_bar("1/3 rendering phantoms -> shards", total=args.n) as (advance, _):
        options = ShardOptions(size=args.size, shard_size="250", val_fraction=0.1, workers=args.workers)
        index = write_phantom_shards(shards, args.n, options, advance)
    print_index_summary(shards, index)

    shard_set = ShardSet.open(shards)
    for s in summarise(shard_set):
        console.print(f"2/3 inspect: {s.split}: {s.images} images in {s.shards} shards, {s.histogram}")
    sheet = contact_sheet(shard_set, args.out / "contact_sheet.png")
    console.print(f"    contact sheet: {sheet}")

    loader = ShardLoader(shard_set, batch_size=32, num_workers=args.workers, seed=0)
    t0, n, shape = time.perf_counter(), 0, ""
    for images, _labels in loader:
        n, shape = n + len(images), f"{tuple(images.shape)} {images.dtype}"
    rate = n / (time.perf_counter() - t0)
    console.print(f"3/3 loader: one epoch = {len(loader)} batches of {shape}, {rate:.0f} images/s")
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; outputs in {args.out}/")
    return 0
