"""The closest (generated, nearest training image) pairs as one PNG, for a human to judge copies.

Pairs go left to right, top to bottom, closest first, COLUMNS per row; in each, the generated image
on the left, its nearest training image on the right, and under them the feature distance and both
indices (red: a near copy). Images under MIN_TILE px are enlarged by a whole factor with no
smoothing (the pixels a copy shares stay visible), images over MAX_TILE px shrunk.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from hpcgan.atomic import atomic_open

COLUMNS = 4  # pairs per row
GAP = 2  # px between the two images of a pair
PAD = 6  # px around each pair
CAPTION = 14  # px of caption under each pair
MIN_TILE, MAX_TILE = 64, 256
BACKGROUND, TEXT, NEAR_COPY = (24, 24, 24), (220, 220, 220), (255, 90, 90)


def tile_side(size: int) -> int:
    if size < MIN_TILE:
        return size * math.ceil(MIN_TILE / size)
    return min(size, MAX_TILE)


def layout(k: int, tile: int) -> tuple[int, int, int]:
    """(columns, width, height) of the picture of `k` pairs of `tile`-px images."""
    cols = min(k, COLUMNS)
    rows = math.ceil(k / cols)
    return cols, cols * (2 * tile + GAP) + (cols + 1) * PAD, rows * (tile + CAPTION) + (rows + 1) * PAD


def _tile(image: torch.Tensor, tile: int) -> Image.Image:
    gray = Image.fromarray(np.ascontiguousarray(image.reshape(image.shape[-2:]).cpu().numpy().astype(np.uint8)), "L")
    if gray.size == (tile, tile):
        return gray
    upscale = gray.width < tile
    return gray.resize((tile, tile), Image.Resampling.NEAREST if upscale else Image.Resampling.LANCZOS)


def closest_pairs_image(generated: torch.Tensor, train: torch.Tensor, pairs: list[dict[str, Any]]) -> Image.Image:
    """generated and train: uint8 [k, 1, S, S] (their sides may differ); pairs: report["closest_pairs"]."""
    if not len(generated) == len(train) == len(pairs) > 0:
        raise ValueError(f"{len(generated)} generated, {len(train)} train, {len(pairs)} pairs: expected k > 0 of each")
    tile = tile_side(max(generated.shape[-1], train.shape[-1]))
    cols, width, height = layout(len(pairs), tile)
    picture = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    cell = 2 * tile + GAP
    for n, (gen, real, pair) in enumerate(zip(generated, train, pairs, strict=True)):
        row, col = divmod(n, cols)
        x, y = PAD + col * (cell + PAD), PAD + row * (tile + CAPTION + PAD)
        picture.paste(_tile(gen, tile).convert("RGB"), (x, y))
        picture.paste(_tile(real, tile).convert("RGB"), (x + tile + GAP, y))
        caption = f"d={pair['distance']:.3g}  g{pair['generated']} t{pair['train']}"
        if draw.textlength(caption, font=font) > cell:
            caption = f"d={pair['distance']:.3g}"  # small tiles: the distance matters most
        draw.text((x, y + tile + 1), caption, fill=NEAR_COPY if pair.get("near_copy") else TEXT, font=font)
    return picture


def write_closest_pairs(
    path: str | Path, generated: torch.Tensor, train: torch.Tensor, pairs: list[dict[str, Any]]
) -> tuple[int, int]:
    """Write the picture to `path` atomically; returns its (width, height)."""
    picture = closest_pairs_image(generated, train, pairs)
    with atomic_open(path, "wb") as handle:
        picture.save(handle, format="PNG")
    return picture.size
