"""The sample grids: the same fixed latents drawn every `train.sample_every` steps and at the end,
so the grids of one run show the same 64 images developing (classes in fixed columns; for a
multi-label set, column c holds the most common label set with class c)."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from hpcgan.atomic import write_bytes
from hpcgan.data.label_sets import SEPARATOR, LabelSets
from hpcgan.runs.layout import RunPaths

SAMPLE_GRID = 64  # images in each sample grid
GRID_COLUMNS = math.ceil(math.sqrt(SAMPLE_GRID))  # save_grid's layout


class SampleGrids:
    def __init__(self, run_dir: Path, every: int, z_dim: int, num_classes: int, seed: int, enabled: bool,
                 label_sets: LabelSets | None = None) -> None:  # fmt: skip
        self.paths, self.every, self.enabled = RunPaths(run_dir), every, enabled
        fixed = torch.Generator(device="cpu").manual_seed(seed)
        self.z = torch.randn(SAMPLE_GRID, z_dim, generator=fixed)
        # Column c of the grid holds class c mod K: fixed columns for any number of classes.
        self.labels = (torch.arange(SAMPLE_GRID) % GRID_COLUMNS) % max(num_classes, 1)
        if label_sets is not None:
            self.labels = label_sets.hot_tensor([column_set(label_sets, int(c)) for c in self.labels])

    def should_sample(self, step: int) -> bool:
        return bool(self.every and step % self.every == 0)

    @torch.no_grad()
    def save(self, g: nn.Module, step: int, device: torch.device) -> None:
        """The grid of `g` at `step` (rank 0); a grid that cannot be written is a warning only."""
        if not self.enabled:
            return
        was_training = g.training
        g.eval()
        images = g(self.z.to(device), self.labels.to(device))
        g.train(was_training)
        path = self.paths.sample_grid(step)
        try:
            save_grid(images, path)
        except OSError as exc:  # a picture for people: training goes on without it
            warnings.warn(f"{path}: sample grid not written ({exc.strerror or exc}); training goes on", stacklevel=1)


def column_set(label_sets: LabelSets, c: int) -> str:
    """The label set of a multi-label grid's column for class c: the most common set holding c."""
    name = label_sets.classes[c]
    return next((n for n in label_sets.names if name in n.split(SEPARATOR)), name)


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
