"""What `python -m hpcgan.bench loader` compares the shard loader with: an ImageFolder-style
per-file loader over the very bytes stored in the shards, and bare decoding in parallel processes."""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import Dataset

from hpcgan.data.formats import decode
from hpcgan.data.index import ShardSet

DECODE_TIMEOUT = 120.0  # seconds beyond --min-seconds before a silent decode process counts as dead


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
