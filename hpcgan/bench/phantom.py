"""`python -m hpcgan.bench phantom`: how fast phantoms are made, against the target of thousands
per minute at 256 px, and against preparing a real radiograph for a shard (decode, resize, encode)
in the same run."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from hpcgan.bench.loader_setup import DEFAULT_DATA
from hpcgan.console import console
from hpcgan.data.formats import DEFAULT_FORMAT, encode
from hpcgan.data.phantom import render_phantom, write_phantom_shards
from hpcgan.data.shard_images import prepare_file
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.sources import discover

TARGET_PER_MINUTE = 1000


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--n", type=int, default=300, help="phantoms per measurement")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))


def run(args: argparse.Namespace) -> int:
    """Phantoms per minute, one process and all cores, against the target and real-image sharding."""
    start = time.perf_counter()
    for i in range(args.n):
        encode(render_phantom(0, i, i % 2, args.size), DEFAULT_FORMAT)
    one_process = 60 * args.n / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        options = ShardOptions(size=args.size, shard_size="100", workers=args.workers)
        write_phantom_shards(Path(tmp) / "s", args.n, options)
        all_cores = 60 * args.n / (time.perf_counter() - start)

    real = None
    if (DEFAULT_DATA / "chest_xray").is_dir():
        images = discover(DEFAULT_DATA / "chest_xray")[: min(args.n, 100)]
        start = time.perf_counter()
        for im in images:
            prepare_file((str(im.path), im.path.name), args.size, "crop", DEFAULT_FORMAT)
        real = 60 * len(images) / (time.perf_counter() - start)

    result = {
        "bench": "phantom",
        "size": args.size,
        "per_minute_one_process": round(one_process),
        "per_minute_shards_all_cores": round(all_cores),
        "workers": args.workers,
        "target_per_minute": TARGET_PER_MINUTE,
        "ratio_to_target": round(one_process / TARGET_PER_MINUTE, 2),
        "real_image_prepare_per_minute": None if real is None else round(real),
        "phantom_vs_real_image": None if real is None else round(one_process / real, 2),
    }
    console.print(
        f"phantoms at {args.size} px: {one_process:.0f}/min in one process "
        f"({result['ratio_to_target']}x the {TARGET_PER_MINUTE}/min target), "
        f"{all_cores:.0f}/min into shards on {args.workers} workers"
    )
    print(json.dumps(result))
    return 0
