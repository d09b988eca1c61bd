"""Phantoms with findings (`hpcgan phantom --findings`): multi-label chest radiographs.

Each image draws four findings independently, each with its own prevalence, so they overlap:
opacity (patchy consolidation), cardiomegaly (a wider heart), effusion (fluid in the costophrenic
angle with a meniscus) and pneumothorax (a lung edge with dark, markingless air beyond it). Lungs
carry faint vascular markings here (not in the two-class phantoms, which stay byte-identical), so a
pneumothorax shows as markings that stop at the pleural line.

Every part has its own random stream keyed by (seed, index, part): the anatomy, the markings and
each finding's shape do not depend on which other findings are present, so an image with a finding
differs from the same (seed, index) without it only by that finding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np

from hpcgan.data.label_sets import NO_FINDING
from hpcgan.data.phantom_anatomy import Chest, consolidation, draw_chest, ellipse, film, phantom_sample, sigmoid
from hpcgan.data.shard_writer import PlannedSample, Prepared, planned_multi_label

FINDINGS = ("opacity", "cardiomegaly", "effusion", "pneumothorax")
PREVALENCE = {"opacity": 0.30, "cardiomegaly": 0.25, "effusion": 0.20, "pneumothorax": 0.10}
FINDINGS_CLASSES = [*FINDINGS, NO_FINDING]
# Stream keys, apart from the two-class phantoms' (label 0 or 1) and from each other.
_LABELS, _ANATOMY, _MARKINGS, _FINDING = 1000, 1001, 1002, 1010


def draw_findings(seed: int, index: int) -> tuple[str, ...]:
    """The findings of phantom `index`: independent draws, each at its prevalence."""
    draws = np.random.default_rng([seed, index, _LABELS]).random(len(FINDINGS))
    return tuple(f for f, x in zip(FINDINGS, draws, strict=True) if x < PREVALENCE[f])


def render_findings_phantom(seed: int, index: int, findings: Sequence[str], size: int) -> np.ndarray:
    """One phantom with `findings` (NO_FINDING or none for a normal chest) as a (size, size) uint8 array."""
    findings = set(findings) - {NO_FINDING}
    unknown = findings - set(FINDINGS)
    if unknown:
        raise ValueError(f"unknown findings {sorted(unknown)}; expected some of {FINDINGS}")
    streams = {f: np.random.default_rng([seed, index, _FINDING + k]) for k, f in enumerate(FINDINGS)}
    heart = partial(_heart, enlarge=_enlargement(streams["cardiomegaly"]) if "cardiomegaly" in findings else None)
    rng = np.random.default_rng([seed, index, _ANATOMY])
    chest = draw_chest(rng, size, heart, scale_free=True)
    # A denser heart than the two-class phantoms' (most of the lung's darkness filled): its outline,
    # and so its width, reads at 64 px.
    extra = max(0.88 * chest.lung_dark - chest.heart_bright, 0.02) * chest.heart * chest.lungs
    chest.img += extra
    air = np.maximum(chest.lung_dark * chest.lungs * chest.body - chest.heart_bright * chest.heart * chest.lungs
                     - extra, 0)  # fmt: skip
    markings = _markings(np.random.default_rng([seed, index, _MARKINGS]), chest, size)
    gap = line = np.zeros_like(chest.img)
    ptx_side = None
    if "pneumothorax" in findings:
        ptx_side, gap, line, collapsed = _pneumothorax(streams["pneumothorax"], chest, size)
        chest.img += collapsed
    fluid = _effusion(streams["effusion"], chest, ptx_side) if "effusion" in findings else np.zeros_like(gap)
    keep = (1 - gap) * (1 - fluid)  # lung tissue left: markings and consolidation live only there
    chest.img += fluid * air - (0.09 * gap - line) * (1 - fluid) + markings * keep
    if "opacity" in findings:
        chest.img += consolidation(streams["opacity"], chest.u, chest.v, chest.lungs * keep, size)
    return film(rng, chest.img, size, grain=min(1.0, (size / 256) ** 0.5))  # a 256 px film's grain, downsized


def _enlargement(rng: np.random.Generator) -> tuple[float, float, float]:
    """Cardiomegaly: (half-length, taller, shift). The half-length is 0.41-0.48 whatever the drawn
    heart (a normal one's is 0.26-0.33): cardiothoracic ratio 0.60-0.75 against 0.38-0.53."""
    return rng.uniform(0.41, 0.48), rng.uniform(1.25, 1.4), rng.uniform(-0.02, 0.02)


def _heart(u, v, hu: float, hv: float, hw: float, hh: float, edge: float, enlarge=None) -> np.ndarray:
    """The heart as an ellipse tilted along the cardiac axis (apex down and out), so its left border
    sweeps down to the diaphragm as on a film rather than ending in a flat top; a normal one a little
    smaller than the two-class phantoms' (cardiothoracic ratio about 0.38-0.53)."""
    if enlarge is None:
        hw = 0.92 * hw
    else:
        hw, taller, shift = enlarge
        hu, hv, hh = hu + shift, hv + 0.03, hh * taller
    du, dv = u - hu, v - hv
    c, s = math.cos(0.25), math.sin(0.25)
    return ellipse(c * du + s * dv, c * dv - s * du, 0.0, 0.0, hw, 0.85 * hh, edge)


def _markings(rng: np.random.Generator, chest: Chest, size: int) -> np.ndarray:
    """Bronchovascular markings: tapering branches from each hilum out towards the lung edge."""
    out = np.zeros_like(chest.img)
    pixel = 2.0 / size
    to_pixel = _pixel_map(chest.u, chest.v)
    for side in (-1, 1):
        _, cu, au, av = chest.lung_sides[side]
        hilum = np.array([side * rng.uniform(0.17, 0.22), rng.uniform(-0.14, -0.04)])
        out += 0.03 * _blob(chest, hilum, 0.035, 0.07)  # the hilar vessels themselves
        stack = [(hilum, a, 0.02, 1.0) for a in np.linspace(-1.25, 1.3, 8) + rng.normal(0, 0.1, 8)]
        while stack:
            start, angle, width, amp = stack.pop()
            step = rng.uniform(0.09, 0.12)
            end = start + step * np.array([side * np.cos(angle), np.sin(angle)])
            if not _inside_lung(end, cu, au, av) or amp < 0.25:
                continue
            _segment(out, chest, to_pixel, start, end, width, 0.12 * amp, pixel)
            stack.append((end, angle + rng.normal(0, 0.2), width * 0.88, amp * 0.92))
            if rng.random() < 0.35:  # a side branch
                stack.append((end, angle + rng.choice([-1, 1]) * rng.uniform(0.4, 0.8), width * 0.7, amp * 0.72))
    return out * chest.lungs


def _inside_lung(point: np.ndarray, cu: float, au: float, av: float) -> bool:
    taper = 0.65 + 0.35 * sigmoid(np.array((point[1] + 0.45) / 0.12))
    return ((point[0] - cu) / (au * taper)) ** 2 + (point[1] / av) ** 2 < 0.93


def _pixel_map(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The affine map from chest coordinates (u, v) to pixel (row, col): the inverse of the pose."""
    n = u.shape[0] - 1
    origin = np.array([u[0, 0], v[0, 0]])
    cols = np.array([u[0, n] - u[0, 0], v[0, n] - v[0, 0]]) / n
    rows = np.array([u[n, 0] - u[0, 0], v[n, 0] - v[0, 0]]) / n
    inverse = np.linalg.inv(np.stack([rows, cols], axis=1))
    return np.concatenate([inverse, (-inverse @ origin)[:, None]], axis=1)  # [2, 3]: (row, col) = M @ (u, v, 1)


def _segment(out, chest: Chest, to_pixel, a, b, width: float, amp: float, pixel: float) -> None:
    """Add a vessel from a to b: a Gaussian ridge, widened to at least a pixel with its integral kept
    (no aliased dots at 64 px), computed only in the segment's bounding box."""
    sigma = math.hypot(width, 0.6 * pixel)
    amp *= (width / sigma) ** 0.5
    rows, cols = to_pixel @ np.array([[a[0], b[0]], [a[1], b[1]], [1.0, 1.0]])
    reach = 3 * sigma / pixel + 2
    r0, r1 = max(int(min(rows) - reach), 0), int(max(rows) + reach) + 2
    c0, c1 = max(int(min(cols) - reach), 0), int(max(cols) + reach) + 2
    if r0 >= out.shape[0] or c0 >= out.shape[1] or r1 <= 0 or c1 <= 0:
        return
    du, dv = b[0] - a[0], b[1] - a[1]
    pu, pv = chest.u[r0:r1, c0:c1] - a[0], chest.v[r0:r1, c0:c1] - a[1]
    t = np.clip((pu * du + pv * dv) / (du * du + dv * dv), 0, 1)
    dist2 = (pu - t * du) ** 2 + (pv - t * dv) ** 2
    # Max, not sum: where branches meet (at the hilum) they do not pile up into a bright dot.
    np.maximum(out[r0:r1, c0:c1], amp * np.exp(dist2 * (-0.5 / sigma**2)), out=out[r0:r1, c0:c1])


def _blob(chest: Chest, centre: np.ndarray, ru: float, rv: float) -> np.ndarray:
    return np.exp(-(((chest.u - centre[0]) / ru) ** 2 + ((chest.v - centre[1]) / rv) ** 2) / 2)


def _pneumothorax(rng: np.random.Generator, chest: Chest, size: int):
    """Air between the chest wall and a lung collapsed towards its hilum: (side, gap mask, pleural
    line, extra density of the collapsed lung). The gap is widest at the apex, as in an upright film."""
    side = int(rng.choice([-1, 1]))
    mask, cu, au, av = chest.lung_sides[side]
    lateral, apical = rng.uniform(0.1, 0.18), rng.uniform(0.2, 0.38)
    cu2, au2 = cu - side * lateral / 2, au - lateral / 2
    cv2, av2 = apical / 2, av - apical / 2
    u, v = chest.u / chest.taper, chest.v
    r = np.sqrt(((u - cu2 / chest.taper) / au2) ** 2 + ((v - cv2) / av2) ** 2)
    collapsed = ellipse(u, v, cu2 / chest.taper, cv2, au2, av2, chest.edge * 3)
    gap = mask * (1 - collapsed)
    # The visceral pleura: a thin bright line, at least a pixel wide with its integral kept.
    width = float(np.hypot(0.008, 0.5 * 2.0 / size))
    line = rng.uniform(0.09, 0.12) * 0.008 / width * np.exp(-((((r - 1) * au2) / width) ** 2)) * mask
    return side, gap, line, 0.015 * collapsed * mask


def _effusion(rng: np.random.Generator, chest: Chest, flat_side: int | None) -> np.ndarray:
    """Pleural fluid (0..1) in one or both lower hemithoraces: it fills the costophrenic angle and
    rises along the chest wall in a meniscus (an air-fluid level instead, on a pneumothorax's side)."""
    sides = [[-1], [1], [-1, 1]][rng.choice(3, p=[0.4, 0.4, 0.2])]
    fluid = np.zeros_like(chest.img)
    for side in (-1, 1):
        _, cu, au, _ = chest.lung_sides[side]
        depth, rise, soft = rng.uniform(0.12, 0.3), rng.uniform(0.25, 0.45), rng.uniform(0.025, 0.04)
        if side not in sides:
            continue
        if side == flat_side:
            rise = 0.0
        t = np.clip((side * chest.u - (abs(cu) - au)) / (2 * au), 0, 1)  # 0 medial .. 1 lateral
        top = chest.dome - depth - rise * t**2
        fluid = np.maximum(fluid, sigmoid((chest.v - top) / soft) * (side * chest.u > 0))
    return fluid * rng.uniform(0.88, 1.0)


def findings_plan(seed: int, n: int, n_val: int) -> dict[str, list[PlannedSample]]:
    """`n` phantoms in index order, each with its drawn findings; the last `n_val` as 'val'."""
    splits = {"train": range(n - n_val), "val": range(n - n_val, n)}
    plan = {}
    for split, indices in splits.items():
        if len(indices):
            samples = []
            for i in indices:
                findings = draw_findings(seed, i)
                samples.append(planned_multi_label(f"{split}-{i:07d}", findings, FINDINGS_CLASSES, (seed, i, findings)))
            plan[split] = samples
    return plan


def prepare_findings_phantom(job: tuple[int, int, tuple[str, ...]], size: int, fmt: str) -> Prepared:
    seed, index, findings = job
    gray = render_findings_phantom(seed, index, findings, size)
    return phantom_sample(gray, f"phantom:seed={seed}:index={index}:findings", fmt)
