"""A split of a shard set in memory: every image once, in shard order (held-out test sets,
classifier training, diversity baselines). The streaming `ShardLoader` is for training, which drops
the last partial batch and shuffles; evaluation wants each image exactly once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from hpcgan.data.formats import decode
from hpcgan.data.index import ShardSet
from hpcgan.data.loader import read_member_table

_CHUNK = 256  # images decoded before each resize


def _decoded(shard_set: ShardSet, split: str, limit: int) -> Iterator[tuple[np.ndarray, int]]:
    size, ext = shard_set.image_size, shard_set.extension
    served = 0
    for shard in shard_set.shards(split):
        table = read_member_table(shard.path, ext)
        fd = os.open(table.path, os.O_RDONLY)
        try:
            for offset, nbytes, label in zip(table.offsets, table.sizes, table.labels, strict=True):
                if served == limit:
                    return
                yield decode(os.pread(fd, nbytes, offset), ext, size), label
                served += 1
        finally:
            os.close(fd)


def read_split(
    shard_set: ShardSet, split: str, size: int | None = None, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 1, size, size], int64 labels [N]) of the first `limit` samples of `split`
    (all by default; the writer shuffled them, so the first ones are a random pick). `size`: resize
    while reading (antialiased bilinear), so a 512 px set costs memory only at the size asked for."""
    size = size or shard_set.image_size
    n = min(limit if limit is not None else shard_set.count(split), shard_set.count(split))
    images = torch.empty((n, 1, size, size), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    chunk: list[np.ndarray] = []
    filled = 0
    for k, (pixels, label) in enumerate(_decoded(shard_set, split, n)):
        chunk.append(pixels)
        labels[k] = label
        if len(chunk) == _CHUNK or k == n - 1:
            images[filled : filled + len(chunk)] = resize_uint8(torch.from_numpy(np.stack(chunk)).unsqueeze(1), size)
            filled, chunk = filled + len(chunk), []
    return images[:filled], labels[:filled]


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 1, S, S] -> uint8 [N, 1, size, size], antialiased bilinear (as is, if S == size)."""
    if images.shape[-1] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)
