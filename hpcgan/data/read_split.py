"""A split of a shard set in memory: every image once, in shard order (held-out test sets,
classifier training, diversity baselines). The streaming `ShardLoader` is for training, which drops
the last partial batch and shuffles; evaluation wants each image exactly once."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from hpcgan.data.formats import CorruptSample, decode_checked
from hpcgan.data.index import ShardSet
from hpcgan.data.label_sets import masks_to_hot
from hpcgan.data.loader import read_member_table
from hpcgan.data.verify import verify_split

_CHUNK = 256  # images decoded before each resize


def _decoded(shard_set: ShardSet, split: str, limit: int) -> Iterator[tuple[np.ndarray, int]]:
    """The split's intact samples in shard order, up to `limit`; damaged ones are skipped (and
    warned about once per shard), as the training loader skips them."""
    size, ext, num_classes = shard_set.image_size, shard_set.extension, len(shard_set.classes)
    multi = num_classes if shard_set.multi_label else 0
    verify_split(shard_set, split)
    served = 0
    for shard in shard_set.shards(split):
        table = read_member_table(shard.path, ext, multi)
        fd = os.open(table.path, os.O_RDONLY)
        skipped: list[str] = []
        try:
            for offset, nbytes, label in zip(table.offsets, table.sizes, table.labels, strict=True):
                if served == limit:
                    return
                try:
                    if multi and label < 0:
                        raise CorruptSample("label set (.hot) damaged")
                    if not multi and not 0 <= label < num_classes:
                        raise CorruptSample(f"label {label} outside the {num_classes} classes")
                    pixels = decode_checked(os.pread(fd, nbytes, offset), ext, size)
                except CorruptSample as exc:
                    skipped.append(str(exc))
                    continue
                yield pixels, label
                served += 1
        finally:
            os.close(fd)
            if skipped:
                warnings.warn(f"{shard.path}: skipped {len(skipped)} damaged sample(s) ({skipped[0]})", stacklevel=2)


def read_split(
    shard_set: ShardSet, split: str, size: int | None = None, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 1, size, size], int64 labels [N] or, for a multi-label set, multi-hot float
    labels [N, C]) of the first `limit` intact samples of
    `split` (all by default; the writer shuffled them, so the first ones are a random pick). `size`:
    resize while reading (antialiased bilinear), so a 512 px set costs memory only at the size asked for."""
    size = size or shard_set.image_size
    n = min(limit if limit is not None else shard_set.count(split), shard_set.count(split))
    images = torch.empty((n, 1, size, size), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    chunk: list[np.ndarray] = []
    filled = 0
    for k, (pixels, label) in enumerate(_decoded(shard_set, split, n)):
        chunk.append(pixels)
        labels[k] = label
        if len(chunk) == _CHUNK:
            images[filled : filled + len(chunk)] = resize_uint8(torch.from_numpy(np.stack(chunk)).unsqueeze(1), size)
            filled, chunk = filled + len(chunk), []
    if chunk:  # the rest (fewer than n when damaged samples were skipped)
        images[filled : filled + len(chunk)] = resize_uint8(torch.from_numpy(np.stack(chunk)).unsqueeze(1), size)
        filled += len(chunk)
    if shard_set.multi_label:  # _decoded yields bitmasks
        return images[:filled], masks_to_hot(labels[:filled], len(shard_set.classes))
    return images[:filled], labels[:filled]


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 1, S, S] -> uint8 [N, 1, size, size], antialiased bilinear (as is, if S == size)."""
    if images.shape[-1] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)
