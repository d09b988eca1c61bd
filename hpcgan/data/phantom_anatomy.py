"""The phantom's anatomy and film, shared by the two-class phantoms (hpcgan/data/phantom.py) and the
phantoms with findings (hpcgan/data/phantom_findings.py). Radiograph convention: air is dark, bone
and soft tissue bright; the image's left is the patient's right, so the heart sits right of centre.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from hpcgan.data.formats import encode
from hpcgan.data.shard_writer import Prepared


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def ellipse(u, v, cu, cv, au, av, edge, power=2.0) -> np.ndarray:
    """Soft mask of a (super-)ellipse: 1 inside, 0 outside, `edge` wide transition."""
    if power == 2.0:
        r = np.sqrt(((u - cu) / au) ** 2 + ((v - cv) / av) ** 2)
    else:
        r = (np.abs((u - cu) / au) ** power + np.abs((v - cv) / av) ** power) ** (1.0 / power)
    return sigmoid((1.0 - r) / edge)


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a small random grid upsampled bicubically."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC))


@dataclass
class Chest:
    """A drawn chest before the film, with the geometry the findings (phantom_findings.py) draw on."""

    img: np.ndarray
    u: np.ndarray
    v: np.ndarray
    edge: float
    body: np.ndarray
    dome: np.ndarray
    lungs: np.ndarray
    lung_sides: dict[int, tuple[np.ndarray, float, float, float]]  # side -> (mask, centre u, half-width, half-height)
    taper: np.ndarray
    lung_dark: float  # how much air darkens the lungs
    heart: np.ndarray
    heart_bright: float  # how much the heart brightens the lungs it overlaps


# Draws the heart's mask from (u, v, centre u, centre v, half-width, half-height, edge): ellipse by default.
HeartDraw = Callable[[np.ndarray, np.ndarray, float, float, float, float, float], np.ndarray]


def draw_chest(rng: np.random.Generator, size: int, heart: HeartDraw = ellipse, scale_free: bool = False) -> Chest:
    """The anatomy; `heart` draws the heart's mask from its drawn centre and size (phantom_findings
    tilts it, and enlarges it for cardiomegaly). `scale_free` draws the same picture at every size:
    edges no softer in body units than at 128 px (pixel-scaled edges blur a 64 px heart into a round
    glow) and ribs at least half a pixel wide (no aliased 1-px stripes). Without it the draws and
    arithmetic are the original ones: two-class phantoms stay byte-identical."""
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    u0, v0 = np.meshgrid(axis, axis)
    # Patient position: small rotation, shift and zoom.
    angle, zoom = rng.normal(0, 0.04), rng.uniform(0.92, 1.08)
    shift_u, shift_v = rng.normal(0, 0.03, 2)
    u = (np.cos(angle) * u0 - np.sin(angle) * v0) * zoom + shift_u
    v = (np.sin(angle) * u0 + np.cos(angle) * v0) * zoom + shift_v
    edge = 2.5 / (max(size, 128) if scale_free else size)  # soft edges about one pixel wide

    # Body outline with shoulders and neck: soft tissue.
    body_w = rng.uniform(0.82, 0.97)
    body = ellipse(u, v, 0, 0.25, body_w, 1.15, edge * 4, power=rng.uniform(2.3, 3.2))
    neck = ellipse(u, v, 0, -1.0, rng.uniform(0.16, 0.22), 0.35, edge * 4)
    img = 0.04 + rng.uniform(0.38, 0.48) * np.maximum(body, neck)

    # Diaphragm domes: the right one (image left) sits higher, above the liver.
    dome_r = rng.uniform(0.38, 0.5) + 0.25 * (u + 0.35) ** 2
    dome_l = rng.uniform(0.45, 0.58) + 0.25 * (u - 0.35) ** 2
    dome = np.where(u < 0, dome_r, dome_l)
    above_diaphragm = sigmoid((dome - v) / (edge * 3))

    # Lung fields: dark air, tapered towards the apex.
    lungs = np.zeros_like(u)
    lung_sides = {}
    taper = 0.65 + 0.35 * sigmoid((v + 0.45) / 0.12)
    for side in (-1, 1):
        cu = side * rng.uniform(0.34, 0.42)
        au, av = rng.uniform(0.24, 0.3), rng.uniform(0.62, 0.72)
        lung = ellipse(u / taper, v, cu / taper, 0.0, au, av, edge * 3)
        lung_sides[side] = (lung * above_diaphragm, cu, au, av)
        lungs = np.maximum(lungs, lung * above_diaphragm)
    lung_dark = rng.uniform(0.26, 0.34)
    img -= lung_dark * lungs * body

    # Heart shadow, right of centre in the image.
    hu, hv, hw, hh = rng.uniform(0.1, 0.18), rng.uniform(0.22, 0.3), rng.uniform(0.28, 0.36), 0.27
    heart_mask = heart(u, v, hu, hv, hw, hh, edge * 6)
    heart_bright = rng.uniform(0.2, 0.26)
    img += heart_bright * heart_mask * lungs + 0.05 * heart_mask

    # Spine: a bright column with vertebral bodies.
    spine_w = rng.uniform(0.06, 0.08)
    vertebrae = 0.75 + 0.25 * np.cos(v * rng.uniform(22, 28) + rng.uniform(0, np.pi))
    img += 0.22 * sigmoid((spine_w - np.abs(u)) / (edge * 2)) * vertebrae * body

    # Posterior ribs: arcs that fall away from the spine, inside the chest.
    first_rib, spacing = rng.uniform(-0.78, -0.7), rng.uniform(0.13, 0.15)
    lateral = np.abs(u) - spine_w
    thorax = body * sigmoid((dome + 0.1 - v) / (edge * 3)) * (lateral > 0)
    # One periodic profile instead of a loop over ribs: distance to the nearest arc.
    arcs = (v - first_rib - 0.55 * lateral + 0.45 * lateral**2) / spacing
    nearest = np.rint(arcs)
    # Scale-free: at least half a pixel wide, the same ink per rib.
    rib_w, rib_ink = (float(np.hypot(0.022, 1.4 / size)), 0.09 * 0.022) if scale_free else (0.022, None)
    ribs = np.exp(-((((arcs - nearest) * spacing) / rib_w) ** 2)) * ((nearest >= 0) & (nearest < 9))
    img += (rib_ink / rib_w if rib_ink else 0.09) * ribs * thorax

    # Clavicles: slanted bands from the sternal notch to the shoulders.
    for side in (-1, 1):
        t = np.clip(side * u / 0.62, 0, 1)
        line = -0.66 + rng.uniform(-0.05, 0.02) - 0.08 * t + 0.05 * np.sin(np.pi * t)
        img += 0.16 * np.exp(-(((v - line) / 0.025) ** 2)) * (t > 0.12) * (t < 0.98)
    return Chest(img, u, v, edge, body, dome, lungs, lung_sides, taper, lung_dark, heart_mask, heart_bright)


def film(rng: np.random.Generator, img: np.ndarray, size: int, grain: float = 1.0) -> np.ndarray:
    """Film: exposure, gamma, smooth non-uniformity and grain (`grain` scales it); to uint8."""
    img = img * rng.uniform(0.9, 1.1) + 0.04 * smooth_noise(rng, size, 6)
    img = np.clip(img, 0, 1) ** rng.uniform(0.85, 1.15)
    img += rng.normal(0, rng.uniform(0.012, 0.025) * grain, img.shape).astype(np.float32)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def consolidation(rng: np.random.Generator, u, v, lungs, size: int) -> np.ndarray:
    """Patchy airspace opacity: textured blobs in the middle and lower zone of one lung."""
    side = rng.choice([-1, 1])
    patch = np.zeros_like(u)
    for _ in range(rng.integers(3, 8)):
        cu, cv = side * rng.uniform(0.22, 0.5), rng.uniform(-0.1, 0.45)
        radius = rng.uniform(0.06, 0.16)
        patch = np.maximum(patch, np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * radius**2)))
    texture = 0.6 + 0.4 * smooth_noise(rng, size, 24)
    same_side = (u * side > 0).astype(np.float32)
    return rng.uniform(0.2, 0.32) * patch * texture * lungs * same_side


def phantom_sample(gray: np.ndarray, source: str, fmt: str) -> Prepared:
    """A rendered phantom as a shard sample: its pixels' digest stands in for a source file's."""
    meta = {"source": source, "orig_size": list(gray.shape), "sha256": hashlib.sha256(gray.tobytes()).hexdigest()}
    return Prepared(encode(gray, fmt), meta)
