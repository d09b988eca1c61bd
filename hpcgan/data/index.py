"""Read a shard set's index.json: its splits, shards, classes and content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcgan.data.formats import EXTENSIONS
from hpcgan.data.label_sets import NO_FINDING, LabelSets
from hpcgan.errors import UserError

INDEX_NAME = "index.json"


def content_hash(splits: dict[str, Any]) -> str:
    """Hash of every shard's name and sha256: equal hashes mean byte-identical shard sets.
    Later stages (e.g. cached FID statistics) use it as a cache key."""
    listing = sorted((s["name"], s["sha256"]) for split in splits.values() for s in split["shards"])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def check_index(path: Path, index: Any) -> None:
    """The index's shape, and shard names that stay inside the set's folder; one line if not."""

    def bad(what: str) -> UserError:
        return UserError(f"{path}: not a valid shard index ({what})")

    if not isinstance(index, dict):
        raise bad(f"a {type(index).__name__}, not an object")
    for key, kind in (("splits", dict), ("classes", list), ("image_size", int), ("extension", str),
                      ("content_hash", str)):  # fmt: skip
        if not isinstance(index.get(key), kind) or isinstance(index.get(key), bool):
            raise bad(f"{key} missing or not a {kind.__name__}")
    if not all(isinstance(c, str) for c in index["classes"]) or not index["classes"]:
        raise bad("classes must be a non-empty list of names")
    if not 1 <= index["image_size"] <= 8192:
        raise bad(f"image_size {index['image_size']}")
    if index["extension"] not in EXTENSIONS.values():
        raise bad(f"extension {index['extension']!r}, expected one of {', '.join(EXTENSIONS.values())}")
    if not index["splits"]:
        raise bad("no splits")
    if index.get("label_mode", "single") not in ("single", "multi"):
        raise bad(f"label_mode {index.get('label_mode')!r}, expected single or multi")
    if index.get("label_mode") == "multi":
        if index["classes"][-1] != NO_FINDING:
            raise bad(f"a multi-label set's classes end with {NO_FINDING!r}")
        for split, entry in index["splits"].items():
            combos = entry.get("combinations") if isinstance(entry, dict) else None
            if not isinstance(combos, dict) or not all(isinstance(v, int) for v in combos.values()):
                raise bad(f"split {split!r} has no label-set counts (combinations)")
            unknown = {f for name in combos for f in name.split("|")} - set(index["classes"])
            if unknown:
                raise bad(f"split {split!r}: label sets name unknown classes {sorted(unknown)}")
    for split, entry in index["splits"].items():
        shards = entry.get("shards") if isinstance(entry, dict) else None
        if not isinstance(shards, list):
            raise bad(f"split {split!r} has no list of shards")
        for shard in shards:
            name = shard.get("name") if isinstance(shard, dict) else None
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                raise UserError(f"{path}: shard name {name!r} in split {split!r} is not a file name inside "
                                f"{path.parent}; expected e.g. {split}-000000.tar")  # fmt: skip
            for key in ("count", "bytes"):
                value = shard.get(key, 0 if key == "bytes" else None)  # bytes: optional
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise bad(f"{name}: {key} {value!r} is not a count")
            if "sha256" in shard and not isinstance(shard["sha256"], str):
                raise bad(f"{name}: sha256 is not text")


@dataclass(frozen=True)
class ShardInfo:
    path: Path
    count: int


@dataclass(frozen=True)
class ShardSet:
    root: Path
    index: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path, check_files: bool = True) -> ShardSet:
        """Read and check `root/index.json`. With `check_files` (the default), also that every shard
        is there with the size the index records (a stat per shard; the contents are checked by
        hpcgan.data.verify when a process first reads them)."""
        root = Path(root)
        path = root / INDEX_NAME
        if not path.is_file():
            raise UserError(f"{root}: no {INDEX_NAME}; expected a shard set made by `hpcgan shard` or `hpcgan phantom`")
        try:
            index = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{path}: not a valid shard index ({type(exc).__name__}: {exc})") from None
        check_index(path, index)
        shard_set = cls(root, index)
        if check_files:
            problem = next(shard_set.file_problems(), None)
            if problem is not None:
                raise UserError(f"{problem}; re-run `hpcgan shard` to rebuild the set")
        return shard_set

    def file_problems(self) -> Iterator[str]:
        """One line per shard that is missing or whose size differs from the index."""
        for split in self.splits:
            for shard in self.index["splits"][split]["shards"]:
                path = self.root / shard["name"]
                try:
                    size = path.stat().st_size
                except OSError as exc:
                    yield f"{path}: listed in {INDEX_NAME} but {'missing' if not path.exists() else exc.strerror}"
                    continue
                if "bytes" in shard and size != shard["bytes"]:
                    yield f"{path}: {size} bytes, {INDEX_NAME} says {shard['bytes']} (truncated or replaced)"

    @property
    def classes(self) -> list[str]:
        return list(self.index["classes"])

    @property
    def multi_label(self) -> bool:
        """Whether samples carry label sets (multi-hot `.hot` members), not one class each."""
        return self.index.get("label_mode", "single") == "multi"

    @property
    def label_sets(self) -> LabelSets | None:
        """The training split's label sets and their counts (None for a single-label set)."""
        if not self.multi_label:
            return None
        split = "train" if "train" in self.index["splits"] else self.splits[0]
        return LabelSets(tuple(self.classes), dict(self.index["splits"][split]["combinations"]))

    def train_class_counts(self) -> tuple[int, ...]:
        """Training images per class, in class order (per finding for a multi-label set)."""
        split = "train" if "train" in self.index["splits"] else self.splits[0]
        histogram = self.index["splits"][split].get("histogram", {})
        return tuple(int(histogram.get(c, 0)) for c in self.classes)

    @property
    def image_size(self) -> int:
        return int(self.index["image_size"])

    @property
    def extension(self) -> str:
        return str(self.index["extension"])

    @property
    def content_hash(self) -> str:
        return str(self.index["content_hash"])

    @property
    def splits(self) -> list[str]:
        return sorted(self.index["splits"])

    def shards(self, split: str = "train") -> list[ShardInfo]:
        if split not in self.index["splits"]:
            raise UserError(f"{self.root}: has no split {split!r}; it has {', '.join(self.splits) or 'none'}")
        return [ShardInfo(self.root / s["name"], int(s["count"])) for s in self.index["splits"][split]["shards"]]

    def count(self, split: str = "train") -> int:
        return sum(s.count for s in self.shards(split))
