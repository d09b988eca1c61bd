"""Sample grids for the page: which ones go on the timeline, small copies of them, and a grid of
real images laid out as the trainer lays out its samples.

A 256 px run's grid is 8 x 258 px = 2 MB-ish; the page shows downscaled copies and links the
full grid in RUN/samples.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

THUMB_WIDTH = 320  # px: twice the displayed width, for high-density screens
LARGE_WIDTH = 1040
GRID_IMAGES = 64  # images in a trainer's sample grid (hpcgan/train SAMPLE_GRID), 8 x 8
PIL_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)  # what a damaged file raises


def pick(samples: list[tuple[int, Path]], k: int) -> list[tuple[int, Path]]:
    """At most `k` grids, evenly spaced over training; the first and the last always."""
    if k <= 0 or len(samples) <= k:
        return list(samples) if k > 0 else []
    if k == 1:
        return [samples[-1]]
    idx = sorted({round(i * (len(samples) - 1) / (k - 1)) for i in range(k)})
    return [samples[i] for i in idx]


def scaled_png(src: Path, width: int) -> tuple[bytes, int] | None:
    """(PNG, its width): `src` no wider than `width` (never enlarged: the page upscales small
    grids crisply), or None when it can't be read."""
    try:
        with Image.open(src) as im:
            im.load()
            image = im.convert("L") if im.mode not in ("L", "RGB") else im.copy()
    except PIL_ERRORS:
        return None
    return scaled(image, width)


def scaled(image: Image.Image, width: int) -> tuple[bytes, int]:
    if image.width > width:
        image = image.resize((width, max(round(image.height * width / image.width), 1)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue(), image.width


def grid_shape(src: Path | None, resolution: int | None) -> tuple[int, int]:
    """(rows, columns) of a sample grid: from its size (each image has a 1 px border), else 8 x 8."""
    cols = math.ceil(math.sqrt(GRID_IMAGES))
    default = (math.ceil(GRID_IMAGES / cols), cols)
    if src is None or not resolution:
        return default
    try:
        with Image.open(src) as im:  # reads the header only
            width, height = im.size
    except PIL_ERRORS:
        return default
    rows, cols = height // (resolution + 2), width // (resolution + 2)
    return (rows, cols) if rows > 0 and cols > 0 else default


def compose(images: list[np.ndarray], cols: int) -> Image.Image:
    """Square uint8 images in rows of `cols`, each framed by 1 px of black: the trainer's layout."""
    h, w = images[0].shape
    rows = math.ceil(len(images) / cols)
    grid = np.zeros((rows * (h + 2), cols * (w + 2)), np.uint8)
    for i, pixels in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + 2) + 1 : r * (h + 2) + 1 + h, c * (w + 2) + 1 : c * (w + 2) + 1 + w] = pixels[:h, :w]
    return Image.fromarray(grid)
