"""The run's training data, read straight from its shard set (config.json's `data`): the index's
image counts and class mix, and a few real images to set beside the samples.

The shards are WebDataset tars (hpcgan/data/shard_writer.py: KEY.png|jpg|u8, KEY.cls, KEY.json per
image), read with the data layer's torch-free stream reader and checked decoder, so the report loads
neither torch nor webdataset. A set that moved, a damaged index, a missing shard or an unreadable
image becomes a one-line `problem` for the page, never an exception.
"""

from __future__ import annotations

import math
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpcgan.data.formats import CorruptSample, decode_checked
from hpcgan.data.index import ShardSet
from hpcgan.data.inspect import sample_members
from hpcgan.errors import UserError

READ_BUDGET = 4  # read at most this many times the images wanted (to find every class for the layout)


@dataclass(frozen=True)
class Split:
    name: str
    images: int
    shards: int


@dataclass(frozen=True)
class DataSet:
    root: Path
    classes: list[str]
    image_size: int
    extension: str
    splits: list[Split]
    histogram: dict[str, int]  # images per class in the training split
    skipped: int  # source files `hpcgan shard` could not use
    source: str  # where the images came from (the shard settings' source), "" when not recorded
    shard_set: ShardSet = field(repr=False, compare=False)

    @property
    def train_split(self) -> str:
        names = [s.name for s in self.splits]
        return "train" if "train" in names else names[0]


@dataclass
class RealImages:
    pixels: list[np.ndarray]  # square uint8 images
    labels: list[int | None]
    by_class: bool  # laid out with class i % K at position i, as the trainer's fixed labels are
    shard: str  # the first shard read
    unreadable: int = 0  # images that could not be decoded and were skipped
    problem: str | None = None  # one line when no image could be read at all


def open_data(config: dict[str, Any]) -> tuple[DataSet | None, str | None]:
    """(the shard set the run trained on, None), or (None, one line saying why it can't be read)."""
    data = config.get("data") if config else None
    if not config:
        return None, "No config.json: the shard set this run trains on is not known yet."
    if not isinstance(data, str) or not data:
        return None, "config.json names no shard set (data is empty)."
    root = Path(data)
    if not root.is_dir():
        # `hpcgan train --data` keeps a relative path as typed: relative to where training started.
        hint = "; it is relative to the folder training started in" if not root.is_absolute() else ""
        return None, f"{data}: the shard set is not there (moved or deleted since the run started{hint})."
    try:
        shard_set = ShardSet.open(root, check_files=False)
    except UserError as exc:
        return None, str(exc)
    index = shard_set.index
    splits = [Split(name, _count(index["splits"][name]), len(index["splits"][name]["shards"]))
              for name in shard_set.splits]  # fmt: skip
    train = "train" if "train" in shard_set.splits else shard_set.splits[0]
    histogram = index["splits"][train].get("histogram")
    histogram = {str(k): int(v) for k, v in histogram.items() if isinstance(v, int)} if isinstance(histogram, dict) \
        else {}  # fmt: skip
    settings = index.get("settings") if isinstance(index.get("settings"), dict) else {}
    skipped = index.get("skipped") if isinstance(index.get("skipped"), int) else 0
    return DataSet(root, shard_set.classes, shard_set.image_size, shard_set.extension, splits, histogram, skipped,
                   str(settings.get("source") or ""), shard_set), None  # fmt: skip


def _count(split: dict[str, Any]) -> int:
    count = split.get("count")
    return count if isinstance(count, int) else sum(int(s["count"]) for s in split["shards"])


def read_real(data: DataSet, n: int, conditional: bool) -> RealImages:
    """The first `n` decodable images of the training split, in shard order (the shards are
    shuffled, so these are a fair draw). For a conditional run they are placed as the sample grids
    place their classes (grid_classes), when the first shards have enough of every class."""
    shards = data.shard_set.shards(data.train_split)
    first = shards[0].path.name if shards else "(no shard)"
    k = len(data.classes)
    pixels: list[np.ndarray] = []
    labels: list[int | None] = []
    unreadable, problem = 0, None
    try:
        for image_bytes, label in _members(data, [s.path for s in shards], budget=READ_BUDGET * n):
            try:
                pixels.append(decode_checked(image_bytes, data.extension, data.image_size))
            except CorruptSample:
                unreadable += 1
                continue
            labels.append(label)
            if len(pixels) >= n and (not conditional or _enough(labels, n, k)):
                break
    except _Unreadable as exc:
        problem = str(exc)  # the images read before it are still shown
    if not pixels:
        what = problem or f"{data.root}: no readable image in the {data.train_split} shards"
        return RealImages([], [], False, first, unreadable, what + (f" ({unreadable} damaged)" if unreadable else ""))
    if conditional and _enough(labels, n, k):
        pixels, labels = _by_class(pixels, labels, n, k)
        return RealImages(pixels, labels, True, first, unreadable)
    return RealImages(pixels[:n], labels[:n], False, first, unreadable)


class _Unreadable(Exception):
    """A shard that cannot be read (missing, truncated, not a tar); the message names it."""


def _members(data: DataSet, paths: list[Path], budget: int) -> Iterator[tuple[bytes, int | None]]:
    """(image bytes, label) per sample, shard after shard, at most `budget` of them."""
    seen = 0
    for path in paths:
        try:
            for sample in _samples(path, data.extension):
                yield sample
                seen += 1
                if seen >= budget:
                    return
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise _Unreadable(f"{path}: unreadable shard ({getattr(exc, 'strerror', None) or exc})") from None


def _samples(path: Path, extension: str) -> Iterator[tuple[bytes, int | None]]:
    """A shard's samples in order; streamed, so a 1 GB shard is not read past the images we keep."""
    with tarfile.open(path, "r|") as tar:
        for _, members in sample_members(tar):
            if extension in members:
                yield members[extension], _label(members.get("cls", b""))


def _label(raw: bytes) -> int | None:
    try:
        return int(raw.decode().strip())
    except (UnicodeDecodeError, ValueError):
        return None


def grid_classes(n: int, k: int) -> list[int]:
    """The class at each position of an n-image grid of k classes, as the trainer's sample grids
    hold them (hpcgan/train/sample_grid.py): column c has class c mod k."""
    columns = math.ceil(math.sqrt(n))
    return [(i % columns) % k for i in range(n)]


def _enough(labels: list[int | None], n: int, k: int) -> bool:
    wanted = grid_classes(n, k)
    return all(labels.count(c) >= wanted.count(c) for c in range(k))


def _by_class(pixels: list[np.ndarray], labels: list[int | None], n: int, k: int) -> tuple[list, list]:
    pools: dict[int, list[np.ndarray]] = {c: [] for c in range(k)}
    for image, label in zip(pixels, labels, strict=True):
        if label is not None and label in pools:
            pools[label].append(image)
    wanted = grid_classes(n, k)
    return [pools[c].pop(0) for c in wanted], wanted

