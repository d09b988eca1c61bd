"""`python -m hpcgan.bench loader`: the shard loader against an ImageFolder-style per-file loader
and against the bare decode rate, per image size and stored format.

For each (size, format) the same N images are sharded once with the library (`shard_images` on
the real chest X-rays, or phantoms when those are absent). The very bytes stored in the shards are
then also written one file per image (`CLASS/key.ext`) for the per-file loader, and held in memory
for the bare decode loop. All three run with the same parallelism: K DataLoader workers for the
loaders, K processes for the decode loop.

Rates are images/s over the wall time of whole epochs, worker start-up included. "cold" is one
epoch right after evicting the files from the page cache (posix_fadvise DONTNEED), which is what a
cluster filesystem serves on a first epoch; "warm" repeats epochs for at least --min-seconds.
The last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hpcgan.bench.loader_case import STEPS_PER_CASE, bench_case
from hpcgan.bench.loader_report import print_table, summary
from hpcgan.bench.loader_setup import DEFAULT_DATA, Settings, pick_source
from hpcgan.console import console
from hpcgan.data.formats import EXTENSIONS
from hpcgan.data.loader import ShardLoader
from hpcgan.data.shard_options import SIZES, parse_shard_size
from hpcgan.errors import UserError

# The main process receives every batch (unpickling, shared-memory page faults) and, in training,
# drives the GPU: it needs a core of its own, as on any GPU node, so workers = cores - 1.
DEFAULT_WORKERS = max(1, len(os.sched_getaffinity(0)) - 1)
LIBRARY_SHUFFLE_BUFFER = inspect.signature(ShardLoader).parameters["shuffle_buffer"].default


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None, help=f"chest X-ray folder (default {DEFAULT_DATA})")
    parser.add_argument("--n", type=int, default=600, help="images to use (the first N files, sorted by path)")
    parser.add_argument("--sizes", default="256,512", help="comma-separated image sides in px")
    parser.add_argument("--formats", default="png,jpeg,raw", help=f"comma-separated, of {', '.join(EXTENSIONS)}")
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="DataLoader workers, and decode processes (default: cores - 1, leaving the main process a core)",
    )
    parser.add_argument("--batch", type=int, default=32, help="batch size of both loaders")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="least time per warm and decode measurement")
    parser.add_argument("--shard-size", default="100", help="images per shard, so that there are several shards")
    parser.add_argument("--shuffle-buffer", type=int, default=LIBRARY_SHUFFLE_BUFFER, help="ShardLoader buffer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep shards here and reuse them (default: temp)")


def run(args: argparse.Namespace) -> int:
    """Images/s of the shard loader vs an ImageFolder-style per-file loader vs bare decode."""
    sizes = _choices("--sizes", args.sizes, [str(s) for s in SIZES])
    formats = _choices("--formats", args.formats, list(EXTENSIONS))
    settings = _settings(args)
    if not hasattr(os, "posix_fadvise"):
        raise UserError("the cold-cache measurement needs os.posix_fadvise (Linux)")
    cases = [(int(size), fmt) for size in sizes for fmt in formats]
    with _workdir(args.workdir) as workdir, _progress() as progress:
        source = pick_source(args.data, settings.n, workdir)
        overall = progress.add_task("loader benchmark", total=len(cases) * STEPS_PER_CASE)
        results = [bench_case(source, size, fmt, settings, workdir, progress, overall) for size, fmt in cases]
    print_table(results, source, settings)
    print(json.dumps(summary(results, source, settings)), flush=True)
    return 0


def _choices(option: str, text: str, allowed: list[str]) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise UserError(f"{option} {text}: expected a comma-separated list of {', '.join(allowed)}")
    return values


def _settings(args: argparse.Namespace) -> Settings:
    checks = [
        (args.n >= 1, f"--n {args.n}: expected at least 1"),
        (args.batch >= 1, f"--batch {args.batch}: expected at least 1"),
        (args.n >= args.batch, f"--n {args.n}: expected at least one batch ({args.batch}) of images"),
        (args.workers >= 0, f"--workers {args.workers}: expected 0 or more"),
        (args.min_seconds >= 0, f"--min-seconds {args.min_seconds}: expected 0 or more"),
        (args.shuffle_buffer >= 1, f"--shuffle-buffer {args.shuffle_buffer}: expected at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    parse_shard_size(args.shard_size)  # validates
    return Settings(args.n, args.batch, args.workers, args.min_seconds, args.shard_size, args.seed, args.shuffle_buffer)


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="hpcgan-bench-loader-") as tmp:
        yield Path(tmp)


@contextmanager
def _progress() -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # A slow refresh: the bar's thread shares the cores with what is being measured. Transient, so
    # that an error leaves just its one line.
    with Progress(*columns, console=console, refresh_per_second=2, transient=True) as progress:
        yield progress
