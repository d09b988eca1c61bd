"""How `python -m hpcgan.bench loader` times a loader: images/s over whole epochs, and page-cache
eviction for the cold-cache epoch."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path


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
