"""Sample grids for the page: which ones go on the timeline, and small copies of them.

A 256 px run's grid is 8 x 258 px = 2 MB-ish; the page shows downscaled copies and links the
full grid in RUN/samples.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

THUMB_WIDTH = 320  # px: twice the displayed width, for high-density screens
LARGE_WIDTH = 1040


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
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if image.width > width:
        image = image.resize((width, max(round(image.height * width / image.width), 1)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue(), image.width
