"""The options of a shard set that decide its bytes, shared by `hpcgan shard` and `hpcgan phantom`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hpcgan.data.formats import DEFAULT_FORMAT, EXTENSIONS
from hpcgan.errors import UserError

SIZES = (32, 64, 128, 256, 512, 1024)  # 32 and 64 for tests and the smallest presets
MAX_SHARD_BYTES = 1 << 30  # ~1 GB: the usual WebDataset practice, and a cap on any single tar


@dataclass
class ShardLimits:
    max_count: int  # 0 means no limit on images
    max_bytes: int


@dataclass(frozen=True)
class ShardOptions:
    size: int = 256
    fit: str = "crop"
    format: str = DEFAULT_FORMAT
    shard_size: str = "1000"
    val_fraction: float = 0.0
    seed: int = 0
    workers: int = 1

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise UserError(f"--size {self.size}: expected one of {', '.join(map(str, SIZES))}")
        if self.fit not in ("crop", "pad"):
            raise UserError(f"--fit {self.fit}: expected crop or pad")
        if self.format not in EXTENSIONS:
            raise UserError(f"--format {self.format}: expected one of {', '.join(EXTENSIONS)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UserError(f"--val-fraction {self.val_fraction}: expected a fraction in [0, 1)")
        if self.workers < 1:
            raise UserError(f"--workers {self.workers}: expected at least 1")
        self.limits()  # validates --shard-size

    def limits(self) -> ShardLimits:
        return parse_shard_size(self.shard_size)

    def settings(self) -> dict[str, Any]:
        """What determines the bytes written (not --workers, which only changes speed)."""
        return {
            "size": self.size,
            "fit": self.fit,
            "format": self.format,
            "shard_size": self.shard_size,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }


def parse_shard_size(text: str) -> ShardLimits:
    """'1000' = at most 1000 images per shard; '500MB' / '1GB' = at most that many bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b)?\s*", text.lower())
    if not match or int(match.group(1)) == 0:
        raise UserError(f"--shard-size {text}: expected a number of images (1000) or bytes (500MB, 1GB)")
    number, unit = int(match.group(1)), match.group(2)
    if unit is None:
        return ShardLimits(max_count=number, max_bytes=MAX_SHARD_BYTES)
    scale = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9}[unit]
    if number * scale > MAX_SHARD_BYTES:
        raise UserError(f"--shard-size {text}: shards never exceed 1 GB (the WebDataset practice); expected at "
                        "most 1GB")  # fmt: skip
    return ShardLimits(max_count=0, max_bytes=number * scale)
