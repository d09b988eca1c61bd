"""Read a shard set's index.json: its splits, shards, classes and content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcgan.errors import UserError

INDEX_NAME = "index.json"


def content_hash(splits: dict[str, Any]) -> str:
    """Hash of every shard's name and sha256: equal hashes mean byte-identical shard sets.
    Later stages (e.g. cached FID statistics) use it as a cache key."""
    listing = sorted((s["name"], s["sha256"]) for split in splits.values() for s in split["shards"])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


@dataclass(frozen=True)
class ShardInfo:
    path: Path
    count: int


@dataclass(frozen=True)
class ShardSet:
    root: Path
    index: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path) -> ShardSet:
        root = Path(root)
        path = root / INDEX_NAME
        if not path.is_file():
            raise UserError(f"{root}: no {INDEX_NAME}; expected a shard set made by `hpcgan shard` or `hpcgan phantom`")
        try:
            index = json.loads(path.read_text())
            index["splits"], index["classes"], index["image_size"], index["extension"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a valid shard index ({exc})") from None
        return cls(root, index)

    @property
    def classes(self) -> list[str]:
        return list(self.index["classes"])

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
