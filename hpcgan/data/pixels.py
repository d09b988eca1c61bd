"""Pixel-level helpers shared by the image and DICOM readers."""

from __future__ import annotations

import numpy as np
from PIL import Image


class UnreadableImage(Exception):
    """The file is not an image we can decode; the message is the reason recorded in skipped.csv."""


def to_uint8_gray(img: Image.Image) -> np.ndarray:
    """Any PIL mode to uint8 grayscale. Deeper-than-8-bit data is min-max scaled, since 12-bit
    radiographs stored in 16-bit containers would otherwise come out nearly black."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        return scale_to_uint8(arr, float(arr.min()), float(arr.max()))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert("RGB")
    return np.asarray(img.convert("L"), dtype=np.uint8)


def scale_to_uint8(arr: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linearly map [low, high] to [0, 255], clipping outside."""
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    scaled = (arr.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
