"""A whole split of a shard set in memory: every image once, in shard order (held-out test sets,
classifier training). The streaming `ShardLoader` is for training, which drops the last partial
batch and shuffles; evaluation wants each image exactly once."""

from __future__ import annotations

import os

import numpy as np
import torch

from hpcgan.data.formats import decode
from hpcgan.data.index import ShardSet
from hpcgan.data.loader import read_member_table


def read_split(shard_set: ShardSet, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 1, S, S], int64 labels [N]) of every sample in `split`."""
    size, ext = shard_set.image_size, shard_set.extension
    tables = [read_member_table(s.path, ext) for s in shard_set.shards(split)]
    images = np.empty((sum(len(t) for t in tables), 1, size, size), np.uint8)
    labels: list[int] = []
    for table in tables:
        fd = os.open(table.path, os.O_RDONLY)
        try:
            for k, (offset, nbytes) in enumerate(zip(table.offsets, table.sizes, strict=True)):
                images[len(labels) + k, 0] = decode(os.pread(fd, nbytes, offset), ext, size)
        finally:
            os.close(fd)
        labels.extend(table.labels)
    return torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64)
