"""What `python -m hpcgan.bench loader` measures with: the settings every measurement shares, and
the images (the first N real chest X-rays as a CSV manifest, or phantoms when those are absent)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import hpcgan
from hpcgan.data.sources import discover
from hpcgan.errors import UserError

REPO_ROOT = Path(hpcgan.__file__).resolve().parents[1]
DEFAULT_DATA = (REPO_ROOT / ".." / "shared" / "data" / "kermany-cxr").resolve()


@dataclass(frozen=True)
class Settings:
    """What every measurement shares."""

    n: int
    batch: int
    workers: int
    min_seconds: float
    shard_size: str
    seed: int
    shuffle_buffer: int

    @property
    def processes(self) -> int:
        """Decode processes: as many as loader workers (workers=0 still decodes in one process)."""
        return max(1, self.workers)


@dataclass(frozen=True)
class Source:
    """Where the images come from: a CSV manifest of real X-rays, or phantoms (manifest None)."""

    name: str
    manifest: Path | None
    n: int
    note: str = ""  # why phantoms, when they are

    def describe(self, images: int) -> str:
        if self.manifest is not None:
            return f"{self.name} ({images} real images)"
        return f"{self.name} ({images} images; {self.note})"


def pick_source(data: Path | None, n: int, workdir: Path) -> Source:
    """The first `n` real images as a CSV manifest; phantoms when the default folder is absent."""
    folder = data if data is not None else DEFAULT_DATA
    if not folder.is_dir():
        if data is not None:
            raise UserError(f"--data {data}: no such folder")
        return Source("phantom", None, n, f"real chest X-rays not found at {DEFAULT_DATA}")
    images = discover(folder, "folders")[:n]
    manifest = workdir / f"{folder.name}-first{len(images)}.csv"
    with manifest.open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["path", "label"])  # no split column: every image lands in "train"
        rows.writerows([str(im.path.resolve()), im.class_name] for im in images)
    return Source(folder.name, manifest, len(images))
