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
import csv
import dataclasses
import inspect
import json
import multiprocessing
import os
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

import hpcgan
from hpcgan.console import console
from hpcgan.data.formats import DEFAULT_FORMAT, EXTENSIONS, decode
from hpcgan.data.index import INDEX_NAME, ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.data.phantom import write_phantom_shards
from hpcgan.data.shard_images import shard_images
from hpcgan.data.shard_options import SIZES, ShardOptions, parse_shard_size
from hpcgan.data.sources import discover
from hpcgan.errors import UserError

REPO_ROOT = Path(hpcgan.__file__).resolve().parents[1]
DEFAULT_DATA = (REPO_ROOT / ".." / "shared" / "data" / "kermany-cxr").resolve()
TARGETS = {"speedup": 1.5, "decode_fraction": 0.9}
# The main process receives every batch (unpickling, shared-memory page faults) and, in training,
# drives the GPU: it needs a core of its own, as on any GPU node, so workers = cores - 1.
DEFAULT_WORKERS = max(1, len(os.sched_getaffinity(0)) - 1)
LIBRARY_SHUFFLE_BUFFER = inspect.signature(ShardLoader).parameters["shuffle_buffer"].default
STEPS_PER_CASE = 7  # prepare, decode, shard cold, shard warm, shard in-process, per-file cold, per-file warm
DECODE_TIMEOUT = 120.0  # seconds beyond --min-seconds before a silent decode process counts as dead


@dataclass(frozen=True)
class Settings:
    """What every measurement shares."""

    n: int
    batch: int
    workers: int
    min_seconds: float
    shard_size: str
    seed: int
    shuffle_buffer: int

    @property
    def processes(self) -> int:
        """Decode processes: as many as loader workers (workers=0 still decodes in one process)."""
        return max(1, self.workers)


@dataclass(frozen=True)
class Source:
    """Where the images come from: a CSV manifest of real X-rays, or phantoms (manifest None)."""

    name: str
    manifest: Path | None
    n: int
    note: str = ""  # why phantoms, when they are

    def describe(self, images: int) -> str:
        if self.manifest is not None:
            return f"{self.name} ({images} real images)"
        return f"{self.name} ({images} images; {self.note})"


@dataclass(frozen=True)
class Result:
    size: int
    format: str
    images: int
    bytes_per_image: float  # the stored image alone
    shard_bytes_per_image: float  # what the shards take on disk, tar headers and metadata included
    decode: float
    shard_warm: float
    shard_cold: float
    shard_inprocess: float  # num_workers=0: the loader's own cost, without moving batches between processes
    perfile_warm: float
    perfile_cold: float
    processes: int

    @property
    def speedup(self) -> float:
        return self.shard_warm / self.perfile_warm

    @property
    def speedup_cold(self) -> float:
        return self.shard_cold / self.perfile_cold

    @property
    def decode_fraction(self) -> float:
        return self.shard_warm / self.decode

    @property
    def decode_fraction_inprocess(self) -> float:
        """In-process loader against one decode process."""
        return self.shard_inprocess / (self.decode / self.processes)

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "format": self.format,
            "images": self.images,
            "bytes_per_image": round(self.bytes_per_image),
            "shard_bytes_per_image": round(self.shard_bytes_per_image),
            "decode": round(self.decode, 1),
            "shard_warm": round(self.shard_warm, 1),
            "shard_cold": round(self.shard_cold, 1),
            "shard_inprocess": round(self.shard_inprocess, 1),
            "perfile_warm": round(self.perfile_warm, 1),
            "perfile_cold": round(self.perfile_cold, 1),
            "speedup": round(self.speedup, 3),
            "speedup_cold": round(self.speedup_cold, 3),
            "decode_fraction": round(self.decode_fraction, 3),
            "decode_fraction_inprocess": round(self.decode_fraction_inprocess, 3),
            "meets_speedup_warm": self.speedup >= TARGETS["speedup"],
            "meets_speedup_cold": self.speedup_cold >= TARGETS["speedup"],
            "meets_decode_fraction": self.decode_fraction >= TARGETS["decode_fraction"],
        }


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
        source = _source(args.data, settings.n, workdir)
        overall = progress.add_task("loader benchmark", total=len(cases) * STEPS_PER_CASE)
        results = [_bench_case(source, size, fmt, settings, workdir, progress, overall) for size, fmt in cases]
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


def _source(data: Path | None, n: int, workdir: Path) -> Source:
    """The first `n` real images as a CSV manifest; phantoms when the default folder is absent."""
    folder = data if data is not None else DEFAULT_DATA
    if not folder.is_dir():
        if data is not None:
            raise UserError(f"--data {data}: no such folder")
        return Source("phantom", None, n, f"real chest X-rays not found at {DEFAULT_DATA}")
    images = discover(folder, "folders")[:n]
    manifest = workdir / f"{folder.name}-first{len(images)}.csv"
    with manifest.open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["path", "label"])  # no split column: every image lands in "train"
        rows.writerows([str(im.path.resolve()), im.class_name] for im in images)
    return Source(folder.name, manifest, len(images))


def _bench_case(
    source: Source, size: int, fmt: str, settings: Settings, workdir: Path, progress: Progress, overall: TaskID
) -> Result:
    """All measurements of one (size, format)."""
    label = f"{size} px {fmt}"
    case_dir = workdir / f"{source.name}-n{source.n}-seed{settings.seed}-per{settings.shard_size}" / f"{size}-{fmt}"

    def step(text: str) -> None:
        progress.update(overall, description=f"{label}: {text}")

    def done() -> None:
        progress.advance(overall)

    step("sharding")
    shard_set = _shard(source, size, fmt, settings, case_dir / "shards", progress)
    files = extract_files(shard_set, case_dir / "files")
    blobs = [path.read_bytes() for path, _ in files]
    done()

    step(f"bare decode ({settings.processes} processes)")
    decode_rate = decode_rate_parallel(blobs, shard_set.extension, size, settings.processes, settings.min_seconds)
    done()

    shard_paths = [s.path for s in shard_set.shards("train")] + [shard_set.root / INDEX_NAME]
    shard_epoch = _shard_epoch(shard_set, settings)
    step("shard loader, cold cache")
    evict_from_page_cache(shard_paths)
    shard_cold = rate_over_epochs(shard_epoch, 0.0)
    done()
    step("shard loader, warm cache")
    shard_warm = rate_over_epochs(shard_epoch, settings.min_seconds)
    done()
    step("shard loader, in-process")
    inprocess_epoch = _shard_epoch(shard_set, dataclasses.replace(settings, workers=0))
    shard_inprocess = rate_over_epochs(inprocess_epoch, settings.min_seconds / 2)
    done()

    file_epoch = _perfile_epoch(files, shard_set.extension, size, settings)
    step("per-file loader, cold cache")
    evict_from_page_cache(path for path, _ in files)
    perfile_cold = rate_over_epochs(file_epoch, 0.0)
    done()
    step("per-file loader, warm cache")
    perfile_warm = rate_over_epochs(file_epoch, settings.min_seconds)
    done()

    shard_bytes = sum(s.path.stat().st_size for s in shard_set.shards("train"))
    return Result(
        size=size,
        format=fmt,
        images=len(files),
        bytes_per_image=sum(map(len, blobs)) / len(blobs),
        shard_bytes_per_image=shard_bytes / len(files),
        decode=decode_rate,
        shard_warm=shard_warm,
        shard_inprocess=shard_inprocess,
        processes=settings.processes,
        shard_cold=shard_cold,
        perfile_warm=perfile_warm,
        perfile_cold=perfile_cold,
    )


def _shard(source: Source, size: int, fmt: str, settings: Settings, out: Path, progress: Progress) -> ShardSet:
    """Shard once with the library; a kept --workdir with the same settings is reused as it is."""
    task = progress.add_task(f"  sharding {size} px {fmt}", total=source.n)
    advance = lambda k: progress.advance(task, k)
    options = ShardOptions(
        size=size, format=fmt, shard_size=settings.shard_size, seed=settings.seed, workers=max(1, settings.workers)
    )
    if source.manifest is None:
        write_phantom_shards(out, source.n, options, advance)
    else:
        shard_images(source.manifest, out, options, layout="csv", progress=advance)
    progress.remove_task(task)
    shard_set = ShardSet.open(out)
    if shard_set.count("train") < settings.batch:
        raise UserError(f"{out}: {shard_set.count('train')} usable images, fewer than one batch of {settings.batch}")
    return shard_set


def extract_files(shard_set: ShardSet, out: Path) -> list[tuple[Path, int]]:
    """Write every stored image of the train split to `out/CLASS/key.ext`, byte for byte.
    Returns (path, label) per image, in shard order."""
    if out.exists():
        shutil.rmtree(out)  # always rewritten: cheap, and never stale
    ext, files = shard_set.extension, []
    for shard in shard_set.shards("train"):
        for sample in wds.tarfile_samples(iter([{"url": str(shard.path)}])):
            label = int(sample["cls"])
            path = out / shard_set.classes[label] / f"{sample['__key__']}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sample[ext])
            files.append((path, label))
    return files


class FileImages(Dataset):
    """The ImageFolder-style baseline: one file per image, opened, read and decoded per item."""

    def __init__(self, files: list[tuple[Path, int]], ext: str, size: int) -> None:
        self.files, self.ext, self.size = files, ext, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[index]
        with open(path, "rb") as handle:
            data = handle.read()
        # torch.tensor copies: decode may hand back a read-only view of `data`.
        return torch.tensor(decode(data, self.ext, self.size)).unsqueeze(0), label


def _shard_epoch(shard_set: ShardSet, settings: Settings) -> Callable[[], int]:
    loader = ShardLoader(
        shard_set,
        settings.batch,
        seed=settings.seed,
        rank=0,
        world_size=1,
        num_workers=settings.workers,
        shuffle_buffer=settings.shuffle_buffer,
    )
    return lambda: sum(len(labels) for _images, labels in loader)  # each pass is the next epoch


def _perfile_epoch(files: list[tuple[Path, int]], ext: str, size: int, settings: Settings) -> Callable[[], int]:
    loader = DataLoader(
        FileImages(files, ext, size),
        batch_size=settings.batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(settings.seed),
        num_workers=settings.workers,
        drop_last=True,  # full batches only, as the shard loader gives
        # Workers kept across epochs, as the shard loader keeps its own: the comparison is then
        # of reading and decoding, not of process start-up.
        persistent_workers=settings.workers > 0,
    )
    return lambda: sum(len(labels) for _images, labels in loader)


def rate_over_epochs(run_epoch: Callable[[], int], min_seconds: float) -> float:
    """Images/s over whole epochs (worker start-up included), as many as fill `min_seconds`
    (one epoch when 0)."""
    images, start = 0, time.perf_counter()
    while True:
        images += run_epoch()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return images / elapsed


def evict_from_page_cache(paths: Iterable[Path]) -> None:
    """Drop the files from the page cache, so that the next read goes to the disk, as on a first epoch."""
    os.sync()  # dirty pages cannot be dropped
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def decode_rate_parallel(blobs: list[bytes], ext: str, size: int, processes: int, seconds: float) -> float:
    """Images/s of `processes` forked processes decoding their share of `blobs` in a tight loop,
    over the wall time of all of them (fork included, as worker start-up is in the loader rates)."""
    processes = min(processes, len(blobs))
    context = multiprocessing.get_context("fork")  # fork: the blobs are inherited, not pickled
    results = context.Queue()
    start = time.monotonic()
    jobs = [
        context.Process(target=_decode_loop, args=(blobs[w::processes], ext, size, start + seconds, results))
        for w in range(processes)
    ]
    for job in jobs:
        job.start()
    try:
        counts = [results.get(timeout=seconds + DECODE_TIMEOUT) for _ in jobs]
    except queue.Empty:
        raise RuntimeError("a bare-decode process died without reporting") from None
    finally:
        for job in jobs:
            job.join()
    return sum(counts) / (time.monotonic() - start)


def _decode_loop(blobs: list[bytes], ext: str, size: int, deadline: float, results: Any) -> None:
    """Decode round and round until `deadline` (a monotonic time, shared by all processes)."""
    pixels = np.empty((size, size), dtype=np.uint8)
    count = 0
    while True:
        for blob in blobs:
            # Copy into an array, as a loader must: for raw, decode alone is a lazy view, no work.
            pixels[...] = decode(blob, ext, size)
            count += 1
            if time.monotonic() >= deadline:
                results.put(count)
                return


def summary(results: list[Result], source: Source, settings: Settings) -> dict[str, Any]:
    """The final JSON line."""
    return {
        "bench": "loader",
        "data": source.describe(results[0].images if results else 0),
        "workers": settings.workers,
        "batch": settings.batch,
        "decode_processes": settings.processes,
        "shard_size": settings.shard_size,
        "shuffle_buffer": settings.shuffle_buffer,
        "min_seconds": settings.min_seconds,
        "rates": "images/s over whole epochs, worker start-up included",
        "cold": "one epoch after posix_fadvise(DONTNEED) on every file read",
        "results": [r.as_json() for r in results],
        "default_format": DEFAULT_FORMAT,
        "targets": TARGETS,
    }


def print_table(results: list[Result], source: Source, settings: Settings) -> None:
    """A table for people, on stderr: stdout carries only the JSON line."""
    data = source.describe(results[0].images if results else 0)
    table = Table(
        title=f"{data}: images/s, {settings.workers} loader workers, batch {settings.batch}, "
        f"bare decode in {settings.processes} processes",
        caption=f"speedup = shard / per-file (target >= {TARGETS['speedup']}); "
        f"decode frac = shard warm / decode (target >= {TARGETS['decode_fraction']});\n"
        "in-proc = shard loader with num_workers=0 against one decode process;\n"
        "cold = one epoch right after evicting the files from the page cache",
    )
    headers = ["px", "format", "KB/img", "decode", "shard\nwarm", "shard\ncold", "per-file\nwarm", "per-file\ncold"]
    for header in [*headers, "speedup\nwarm", "speedup\ncold", "decode\nfrac", "in-proc\nfrac"]:
        table.add_column(header, justify="left" if header == "format" else "right")
    for r in results:
        rates = [r.decode, r.shard_warm, r.shard_cold, r.perfile_warm, r.perfile_cold]
        table.add_row(
            str(r.size),
            r.format,
            f"{r.bytes_per_image / 1000:.1f}",
            *(f"{rate:.0f}" for rate in rates),
            _ratio(r.speedup, TARGETS["speedup"]),
            _ratio(r.speedup_cold, TARGETS["speedup"]),
            _ratio(r.decode_fraction, TARGETS["decode_fraction"]),
            _ratio(r.decode_fraction_inprocess, TARGETS["decode_fraction"]),
        )
    # Not a terminal (a log, a pipe): give the table room rather than the 80-column default.
    out = console if console.is_terminal else Console(stderr=True, width=140)
    out.print(table)


def _ratio(value: float, target: float) -> str:
    colour = "green" if value >= target else "red"
    return f"[{colour}]{value:.2f}[/]"
