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


class CorruptSample(ValueError):
    """A stored image that does not decode to a (size, size) grayscale array; the message says why."""


def decode_checked(data: bytes, ext: str, size: int) -> np.ndarray:
    """As decode, but any damage is a CorruptSample: undecodable bytes, another format, another
    size (checked from the header, before the pixels are decompressed: no decompression bombs)."""
    if ext == "u8":
        if len(data) != size * size:
            raise CorruptSample(f"{len(data)} bytes of raw pixels, expected {size * size}")
        return np.frombuffer(data, dtype=np.uint8).reshape(size, size)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.size != (size, size):
                raise CorruptSample(f"{img.size[0]}x{img.size[1]} px, expected {size}x{size}")
            pixels = np.asarray(img.convert("L") if img.mode != "L" else img, dtype=np.uint8)
    except CorruptSample:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types (OSError, SyntaxError, zlib.error, ...)
        raise CorruptSample(f"undecodable .{ext} ({type(exc).__name__})") from None
    if pixels.shape != (size, size):
        raise CorruptSample(f"decodes to shape {pixels.shape}, expected ({size}, {size})")
    return pixels


def decode(data: bytes, ext: str, size: int) -> np.ndarray:
    """Stored bytes back to a (size, size) uint8 array."""
    if ext == "u8":
        return np.frombuffer(data, dtype=np.uint8).reshape(size, size)
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L") if img.mode != "L" else img, dtype=np.uint8)
