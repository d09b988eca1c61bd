"""DICOM radiographs (e.g. VinBigData) to 8-bit grayscale, through pydicom from the `dicom` extra."""

from __future__ import annotations

import io

import numpy as np

from hpcgan.data.pixels import UnreadableImage, scale_to_uint8
from hpcgan.errors import UserError

DICOM_MAGIC_OFFSET = 128


def is_dicom(data: bytes) -> bool:
    return data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM"


def read_dicom(data: bytes) -> np.ndarray:
    """Apply the modality LUT (rescale slope/intercept) and the file's window, invert
    MONOCHROME1 (where high values are dark), and return uint8."""
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut
    except ImportError:
        raise UserError("DICOM input needs pydicom: pip install 'hpcgan[dicom]'") from None
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        pixels = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for damaged files
        raise UnreadableImage(f"corrupt DICOM: {exc}") from None
    if pixels.ndim != 2:
        raise UnreadableImage(f"DICOM is not a single 2-D frame (shape {pixels.shape})")
    low, high = _window(ds, pixels)
    gray = scale_to_uint8(pixels, low, high)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        gray = 255 - gray
    return gray


def _window(ds, pixels: np.ndarray) -> tuple[float, float]:
    """The file's first window (centre/width), else the full pixel range."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        center = float(center[0] if _is_multi(center) else center)
        width = float(width[0] if _is_multi(width) else width)
        if width > 0:
            return center - width / 2, center + width / 2
    return float(pixels.min()), float(pixels.max())


def _is_multi(value) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, str | bytes)
