"""The results of `python -m hpcgan.bench loader`: one Result per (size, format) with its ratios
against the targets, the final JSON line and the table for people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from hpcgan.bench.loader_setup import Settings, Source
from hpcgan.console import console
from hpcgan.data.formats import DEFAULT_FORMAT

TARGETS = {"speedup": 1.5, "decode_fraction": 0.9}


@dataclass(frozen=True)
class Result:
    size: int
    format: str
    images: int
    bytes_per_image: float  # the stored image alone
    shard_bytes_per_image: float  # what the shards take on disk, tar headers and metadata included
    decode: float
    shard_warm: float
    shard_cold: float
    shard_inprocess: float  # num_workers=0: the loader's own cost, without moving batches between processes
    perfile_warm: float
    perfile_cold: float
    processes: int

    @property
    def speedup(self) -> float:
        return self.shard_warm / self.perfile_warm

    @property
    def speedup_cold(self) -> float:
        return self.shard_cold / self.perfile_cold

    @property
    def decode_fraction(self) -> float:
        return self.shard_warm / self.decode

    @property
    def decode_fraction_inprocess(self) -> float:
        """In-process loader against one decode process."""
        return self.shard_inprocess / (self.decode / self.processes)

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "format": self.format,
            "images": self.images,
            "bytes_per_image": round(self.bytes_per_image),
            "shard_bytes_per_image": round(self.shard_bytes_per_image),
            "decode": round(self.decode, 1),
            "shard_warm": round(self.shard_warm, 1),
            "shard_cold": round(self.shard_cold, 1),
            "shard_inprocess": round(self.shard_inprocess, 1),
            "perfile_warm": round(self.perfile_warm, 1),
            "perfile_cold": round(self.perfile_cold, 1),
            "speedup": round(self.speedup, 3),
            "speedup_cold": round(self.speedup_cold, 3),
            "decode_fraction": round(self.decode_fraction, 3),
            "decode_fraction_inprocess": round(self.decode_fraction_inprocess, 3),
            "meets_speedup_warm": self.speedup >= TARGETS["speedup"],
            "meets_speedup_cold": self.speedup_cold >= TARGETS["speedup"],
            "meets_decode_fraction": self.decode_fraction >= TARGETS["decode_fraction"],
        }


def summary(results: list[Result], source: Source, settings: Settings) -> dict[str, Any]:
    """The final JSON line."""
    return {
        "bench": "loader",
        "data": source.describe(results[0].images if results else 0),
        "workers": settings.workers,
        "batch": settings.batch,
        "decode_processes": settings.processes,
        "shard_size": settings.shard_size,
        "shuffle_buffer": settings.shuffle_buffer,
        "min_seconds": settings.min_seconds,
        "rates": "images/s over whole epochs, worker start-up included",
        "cold": "one epoch after posix_fadvise(DONTNEED) on every file read",
        "results": [r.as_json() for r in results],
        "default_format": DEFAULT_FORMAT,
        "targets": TARGETS,
    }


def print_table(results: list[Result], source: Source, settings: Settings) -> None:
    """A table for people, on stderr: stdout carries only the JSON line."""
    data = source.describe(results[0].images if results else 0)
    table = Table(
        title=f"{data}: images/s, {settings.workers} loader workers, batch {settings.batch}, "
        f"bare decode in {settings.processes} processes",
        caption=f"speedup = shard / per-file (target >= {TARGETS['speedup']}); "
        f"decode frac = shard warm / decode (target >= {TARGETS['decode_fraction']});\n"
        "in-proc = shard loader with num_workers=0 against one decode process;\n"
        "cold = one epoch right after evicting the files from the page cache",
    )
    headers = ["px", "format", "KB/img", "decode", "shard\nwarm", "shard\ncold", "per-file\nwarm", "per-file\ncold"]
    for header in [*headers, "speedup\nwarm", "speedup\ncold", "decode\nfrac", "in-proc\nfrac"]:
        table.add_column(header, justify="left" if header == "format" else "right")
    for r in results:
        rates = [r.decode, r.shard_warm, r.shard_cold, r.perfile_warm, r.perfile_cold]
        table.add_row(
            str(r.size),
            r.format,
            f"{r.bytes_per_image / 1000:.1f}",
            *(f"{rate:.0f}" for rate in rates),
            _ratio(r.speedup, TARGETS["speedup"]),
            _ratio(r.speedup_cold, TARGETS["speedup"]),
            _ratio(r.decode_fraction, TARGETS["decode_fraction"]),
            _ratio(r.decode_fraction_inprocess, TARGETS["decode_fraction"]),
        )
    # Not a terminal (a log, a pipe): give the table room rather than the 80-column default.
    out = console if console.is_terminal else Console(stderr=True, width=140)
    out.print(table)


def _ratio(value: float, target: float) -> str:
    colour = "green" if value >= target else "red"
    return f"[{colour}]{value:.2f}[/]"
