"""How a square uint8 image is stored inside a shard, and read back.

See README "Stored format" for the benchmark behind the default.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# format name -> file extension inside the tar
EXTENSIONS = {"png": "png", "jpeg": "jpg", "raw": "u8"}
DEFAULT_FORMAT = "png"
JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 6  # fixed, so re-sharding gives byte-identical files


def encode(gray: np.ndarray, fmt: str) -> bytes:
    if fmt == "raw":
        return np.ascontiguousarray(gray, dtype=np.uint8).tobytes()
    buf = io.BytesIO()
    img = Image.fromarray(gray, mode="L")
    if fmt == "png":
        img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "jpeg":
        img.save(buf, "JPEG", quality=JPEG_QUALITY)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return buf.getvalue()


def decode(data: bytes, ext: str, size: int) -> np.ndarray:
    """Stored bytes back to a (size, size) uint8 array."""
    if ext == "u8":
        return np.frombuffer(data, dtype=np.uint8).reshape(size, size)
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L") if img.mode != "L" else img, dtype=np.uint8)
