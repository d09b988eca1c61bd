"""Summaries of a shard set: counts, class balance, resolution, and a contact sheet per class."""

from __future__ import annotations

import io
import json
import random
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import webdataset as wds
from PIL import Image, ImageDraw

from hpcgan.atomic import write_bytes
from hpcgan.data.formats import decode
from hpcgan.data.index import ShardSet


@dataclass(frozen=True)
class SplitSummary:
    split: str
    images: int
    shards: int
    megabytes: float
    histogram: dict[str, int]
    source_short_side: tuple[int, int, int]  # min, median, max of the originals' short side, px


def summarise(shard_set: ShardSet) -> list[SplitSummary]:
    """Counts as read from the tars themselves, checked against index.json."""
    summaries = []
    for split in shard_set.splits:
        shards = shard_set.shards(split)
        counts: Counter = Counter()
        short_sides = []
        for sample in wds.tarfile_samples(iter([{"url": str(s.path)} for s in shards])):
            counts[shard_set.classes[int(sample["cls"])]] += 1
            short_sides.append(min(json.loads(sample["json"])["orig_size"]))
        megabytes = sum(s.path.stat().st_size for s in shards) / 1e6
        sides = (min(short_sides), int(statistics.median(short_sides)), max(short_sides))
        summaries.append(SplitSummary(split, sum(counts.values()), len(shards), megabytes, dict(counts), sides))
    return summaries


def contact_sheet(
    shard_set: ShardSet, out: Path, per_class: int = 8, split: str = "train", seed: int = 0, tile: int = 128
) -> Path:
    """A PNG with one row of `per_class` random samples per class, class names on the left."""
    by_class: dict[int, list[bytes]] = {i: [] for i in range(len(shard_set.classes))}
    seen: Counter = Counter()
    rng = random.Random(seed)
    ext = shard_set.extension
    # Reservoir sampling: one pass over the split, `per_class` uniform picks per class.
    for sample in wds.tarfile_samples(iter([{"url": str(s.path)} for s in shard_set.shards(split)])):
        label = int(sample["cls"])
        seen[label] += 1
        if len(by_class[label]) < per_class:
            by_class[label].append(sample[ext])
        elif (j := rng.randrange(seen[label])) < per_class:
            by_class[label][j] = sample[ext]
    margin = 110
    sheet = Image.new("L", (margin + per_class * tile, len(by_class) * tile), 0)
    draw = ImageDraw.Draw(sheet)
    for row, (label, images) in enumerate(by_class.items()):
        draw.text((6, row * tile + tile // 2 - 6), f"{shard_set.classes[label]}\n(n={seen[label]})", fill=255)
        for col, data in enumerate(images):
            img = Image.fromarray(decode(data, ext, shard_set.image_size)).resize((tile, tile), Image.LANCZOS)
            sheet.paste(img, (margin + col * tile, row * tile))
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    write_bytes(out, buf.getvalue())
    return out
