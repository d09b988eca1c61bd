"""Turn any radiograph file into the square 8-bit grayscale image that shards store.

Never flips: chest anatomy is lateralised (the heart is on the patient's left), so a mirrored
radiograph is a different, rare anatomy (situs inversus), not an augmentation.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from hpcgan.data.dicom import is_dicom, read_dicom
from hpcgan.data.pixels import UnreadableImage, to_uint8_gray

Fit = Literal["crop", "pad"]


def decode_source(data: bytes) -> np.ndarray:
    """Decode a source file's bytes (PNG, JPEG, TIFF, BMP, DICOM, ...) to a 2-D uint8 array."""
    if not data:
        raise UnreadableImage("empty file")
    if is_dicom(data):
        return read_dicom(data)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # force the full decode here so truncation is caught here
            return to_uint8_gray(img)
    except UnidentifiedImageError:
        raise UnreadableImage("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"corrupt image: {exc}") from None


def square(gray: np.ndarray, size: int, fit: Fit = "crop") -> np.ndarray:
    """Antialiased resize to `size` x `size`.

    crop: resize the short side to `size`, then take the centre square.
    pad:  resize the long side to `size`, then letterbox with black.
    """
    height, width = gray.shape
    scale = size / (min(width, height) if fit == "crop" else max(width, height))
    new_w = max(size if fit == "crop" else 1, round(width * scale))
    new_h = max(size if fit == "crop" else 1, round(height * scale))
    img = Image.fromarray(gray, mode="L")
    if (new_w, new_h) != (width, height):
        # LANCZOS is PIL's antialiased filter: it widens its support when downscaling.
        img = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
    if fit == "crop":
        left, top = (new_w - size) // 2, (new_h - size) // 2
        return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(img, ((size - new_w) // 2, (size - new_h) // 2))
    return np.asarray(canvas, dtype=np.uint8)
