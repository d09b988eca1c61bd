"""Summaries of a shard set: counts, class balance, resolution, and a contact sheet per class (for a
multi-label set: counts per finding, the label sets and a sheet row per finding); and
every problem found on the way (missing or resized shards, checksums, unreadable tars, damaged
samples, counts that disagree with index.json), one line each, never a traceback."""

from __future__ import annotations

import hashlib
import io
import json
import random
import statistics
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image, ImageDraw

from hpcgan.atomic import write_bytes
from hpcgan.data.formats import CorruptSample, decode_checked
from hpcgan.data.index import INDEX_NAME, ShardInfo, ShardSet
from hpcgan.data.label_sets import SEPARATOR, decode_hot

MAX_SAMPLE_LINES = 5  # per shard; the rest of its damaged samples are counted in one more line


@dataclass(frozen=True)
class SplitSummary:
    split: str
    images: int
    shards: int
    megabytes: float
    histogram: dict[str, int]  # images per class; per finding for a multi-label set (an image counts under each)
    source_short_side: tuple[int, int, int]  # min, median, max of the originals' short side, px (0s if none)
    combinations: dict[str, int] = field(default_factory=dict)  # multi-label: images per label set, most first


@dataclass(frozen=True)
class _Sample:
    label: int
    meta: dict
    image: bytes
    present: tuple[int, ...]  # the classes it has: (label,), or a multi-label sample's set (NO_FINDING if none)

    def set_name(self, classes: list[str]) -> str:
        return SEPARATOR.join(classes[i] for i in self.present)


class _HashingReader:
    """A file read front to back, hashed on the way: the checksum costs no second pass."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n)
        self.digest.update(data)
        return data

    def finish(self) -> str:
        while self.read(1 << 20):
            pass
        return self.digest.hexdigest()


def summarise(shard_set: ShardSet, problems: list[str] | None = None) -> list[SplitSummary]:
    """Counts as read from the tars themselves. With `problems`, every disagreement with index.json
    and every damaged shard or sample is appended to it as one line; damaged samples are left out."""
    problems = problems if problems is not None else []
    summaries = []
    for split in shard_set.splits:
        shards = shard_set.shards(split)
        counts: Counter = Counter()
        combinations: Counter = Counter()
        short_sides = []
        for shard, entry in zip(shards, shard_set.index["splits"][split]["shards"], strict=True):
            found = 0
            for sample in _samples(shard_set, shard, entry, problems):
                found += 1
                counts.update(shard_set.classes[i] for i in sample.present)
                if shard_set.multi_label:
                    combinations[sample.set_name(shard_set.classes)] += 1
                side = _short_side(sample.meta)
                if side is not None:
                    short_sides.append(side)
            if shard.path.is_file() and found != shard.count:
                problems.append(f"{shard.path}: {found} intact samples, {INDEX_NAME} says {shard.count}")
        expected = shard_set.index["splits"][split].get("histogram")
        if isinstance(expected, dict) and {c: counts.get(c, 0) for c in expected} != expected:
            problems.append(f"{shard_set.root / INDEX_NAME}: split {split} class counts {dict(counts)} "
                            f"differ from the index's {expected}")  # fmt: skip
        megabytes = sum(s.path.stat().st_size for s in shards if s.path.is_file()) / 1e6
        sides = (min(short_sides), int(statistics.median(short_sides)), max(short_sides)) if short_sides else (0, 0, 0)
        images = sum(combinations.values()) if shard_set.multi_label else sum(counts.values())
        ordered = dict(sorted(combinations.items(), key=lambda item: (-item[1], item[0])))
        summaries.append(SplitSummary(split, images, len(shards), megabytes, dict(counts), sides, ordered))
    return summaries


def _short_side(meta: dict) -> int | None:
    size = meta.get("orig_size")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return min(size)
    return None


def _samples(shard_set: ShardSet, shard: ShardInfo, entry: dict, problems: list[str]) -> Iterator[_Sample]:
    """The intact samples of one shard, read front to back (and hashed on the way when the index
    has its sha256); a problem line for the file, the tar, and each damaged sample."""
    path = shard.path
    try:
        handle = path.open("rb")
    except OSError as exc:
        problems.append(f"{path}: listed in {INDEX_NAME} but {'missing' if not path.exists() else exc.strerror}")
        return
    damaged: list[str] = []
    with handle:
        if "bytes" in entry and path.stat().st_size != entry["bytes"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, {INDEX_NAME} says {entry['bytes']}")
        reader = _HashingReader(handle)
        read = 0
        try:
            for key, members in sample_members(tarfile.open(fileobj=reader, mode="r|")):
                read += 1
                try:
                    yield _checked(shard_set, members)
                except CorruptSample as exc:
                    damaged.append(f"{path}: sample {key}: {exc}")
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            reason = (str(exc).splitlines() or ["truncated"])[0]
            problems.append(f"{path}: unreadable tar after {read} sample(s) ({type(exc).__name__}: {reason})")
        sha = reader.finish() if "sha256" in entry else None
    problems += damaged[:MAX_SAMPLE_LINES]
    if len(damaged) > MAX_SAMPLE_LINES:
        problems.append(f"{path}: and {len(damaged) - MAX_SAMPLE_LINES} more damaged samples")
    if sha is not None and sha != entry["sha256"]:
        problems.append(f"{path}: sha256 {sha[:16]}... differs from {INDEX_NAME} ({entry['sha256'][:16]}...)")


def sample_members(tar: tarfile.TarFile) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {suffix: bytes}) per sample of a tar read as a stream: a sample's members are
    consecutive in our shards (the report reads real images through this too)."""
    key, members = None, {}
    for member in tar:
        if not member.isfile():
            continue
        name, _, suffix = member.name.partition(".")
        if name != key and key is not None:
            yield key, members
            members = {}
        key = name
        members[suffix] = tar.extractfile(member).read()
    if key is not None:
        yield key, members


def _checked(shard_set: ShardSet, members: dict[str, bytes]) -> _Sample:
    ext, size, classes = shard_set.extension, shard_set.image_size, shard_set.classes
    if ext not in members:
        raise CorruptSample(f"no .{ext} image (members: {', '.join(sorted(members)) or 'none'})")
    try:
        label = int(members.get("cls", b""))
    except ValueError:
        raise CorruptSample(f"class label {members.get('cls', b'')[:20]!r} is not a number") from None
    if not 0 <= label < len(classes):
        raise CorruptSample(f"label {label} outside the {len(classes)} classes")
    present = (label,)
    if shard_set.multi_label:
        mask = decode_hot(members.get("hot", b""), len(classes))
        if mask is None:
            raise CorruptSample(f"label set (.hot) is not {len(classes)} 0/1 flags with No Finding last")
        present = tuple(i for i in range(len(classes)) if mask >> i & 1)
    decode_checked(members[ext], ext, size)
    try:
        meta = json.loads(members.get("json", b"{}"))
    except ValueError:
        raise CorruptSample("unreadable .json metadata") from None
    return _Sample(label, meta if isinstance(meta, dict) else {}, members[ext], present)


def contact_sheet(
    shard_set: ShardSet, out: Path, per_class: int = 8, split: str = "train", seed: int = 0, tile: int = 128
) -> Path:
    """A PNG with one row of `per_class` random intact samples per class, class names on the left
    (multi-label: a row per finding of images that have it, and a No Finding row)."""
    by_class: dict[int, list[bytes]] = {i: [] for i in range(len(shard_set.classes))}
    seen: Counter = Counter()
    rng = random.Random(seed)
    ext = shard_set.extension
    ignored: list[str] = []  # summarise() reports them
    # Reservoir sampling: one pass over the split, `per_class` uniform picks per class.
    for shard, entry in zip(shard_set.shards(split), shard_set.index["splits"][split]["shards"], strict=True):
        for sample in _samples(shard_set, shard, {k: v for k, v in entry.items() if k != "sha256"}, ignored):
            for label in sample.present:
                seen[label] += 1
                if len(by_class[label]) < per_class:
                    by_class[label].append(sample.image)
                elif (j := rng.randrange(seen[label])) < per_class:
                    by_class[label][j] = sample.image
    margin = 110
    if shard_set.multi_label:  # findings have long names (Enlarged Cardiomediastinum): widen to the longest
        measure = ImageDraw.Draw(Image.new("L", (1, 1)))
        margin = max(margin, 12 + int(max(measure.textlength(c) for c in shard_set.classes)))
    sheet = Image.new("L", (margin + per_class * tile, len(by_class) * tile), 0)
    draw = ImageDraw.Draw(sheet)
    for row, (label, images) in enumerate(by_class.items()):
        draw.text((6, row * tile + tile // 2 - 6), f"{shard_set.classes[label]}\n(n={seen[label]})", fill=255)
        for col, data in enumerate(images):
            img = Image.fromarray(decode_checked(data, ext, shard_set.image_size)).resize((tile, tile), Image.LANCZOS)
            sheet.paste(img, (margin + col * tile, row * tile))
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    write_bytes(out, buf.getvalue())
    return out
