"""What a run writes for people: metrics.jsonl and sample grids (rank 0 only)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from hpcgan.atomic import write_bytes


class MetricsLog:
    """Appends one JSON object per record to a .jsonl file: metrics.jsonl (one per logged step) or
    events.jsonl (start, stop, divergence, completion). Line-buffered, so a kill loses at most the
    line being written."""

    def __init__(self, run_dir: Path, enabled: bool, name: str = "metrics.jsonl") -> None:
        self.handle = (run_dir / name).open("a", buffering=1) if enabled else None

    def write(self, record: dict[str, Any]) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def save_grid(images: torch.Tensor, path: Path) -> None:
    """A square-ish grid of images in [-1, 1], [N, 1, H, W], as an 8-bit PNG."""
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    n, _, h, w = pixels.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + 2), cols * (w + 2)), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + 2) + 1 : r * (h + 2) + 1 + h, c * (w + 2) + 1 : c * (w + 2) + 1 + w] = pixels[i, 0]
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, "PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buf.getvalue())
