"""One case of `python -m hpcgan.bench loader`: every measurement of one (size, format), from
sharding the images to the cold and warm epochs of each loader."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from rich.progress import Progress, TaskID
from torch.utils.data import DataLoader

from hpcgan.bench.loader_baselines import FileImages, decode_rate_parallel, extract_files
from hpcgan.bench.loader_report import Result
from hpcgan.bench.loader_setup import Settings, Source
from hpcgan.bench.loader_timing import evict_from_page_cache, rate_over_epochs
from hpcgan.data.index import INDEX_NAME, ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.data.phantom import write_phantom_shards
from hpcgan.data.shard_images import shard_images
from hpcgan.data.shard_options import ShardOptions
from hpcgan.errors import UserError

STEPS_PER_CASE = 7  # prepare, decode, shard cold, shard warm, shard in-process, per-file cold, per-file warm


def bench_case(
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
