"""A procedural chest-radiograph phantom: the built-in default data for the demo and the tests.

Two classes, `normal` and `opacity` (patchy consolidation in one lung), drawn on the anatomy of
hpcgan/data/phantom_anatomy.py; `findings=True` writes the multi-label phantoms of
hpcgan/data/phantom_findings.py instead. Every anatomical part varies per sample, and a sample is a
pure function of (seed, index, class, size).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hpcgan.data.phantom_anatomy import consolidation, draw_chest, film, phantom_sample
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.shard_writer import PlannedSample, Prepared, write_shard_set
from hpcgan.errors import UserError

PHANTOM_CLASSES = ["normal", "opacity"]


def render_phantom(seed: int, index: int, label: int, size: int) -> np.ndarray:
    """One phantom radiograph as a (size, size) uint8 array."""
    rng = np.random.default_rng([seed, index, label])
    chest = draw_chest(rng, size)
    if PHANTOM_CLASSES[label] == "opacity":
        chest.img += consolidation(rng, chest.u, chest.v, chest.lungs, size)
    return film(rng, chest.img, size)


def _prepare_phantom(job: tuple[int, int, int], size: int, fmt: str) -> Prepared:
    seed, index, label = job
    gray = render_phantom(seed, index, label, size)
    return phantom_sample(gray, f"phantom:seed={seed}:index={index}", fmt)


def write_phantom_shards(
    out: Path,
    n: int,
    options: ShardOptions,
    progress: Callable[[int], None] | None = None,
    findings: bool = False,
) -> dict[str, Any]:
    """`n` phantoms, the last `val_fraction` as a val split: two classes balanced and interleaved,
    or with `findings` a multi-label set (hpcgan/data/phantom_findings.py)."""
    if n < 1:
        raise UserError(f"--n {n}: expected at least 1")
    seed = options.seed
    n_val = round(n * options.val_fraction)
    if findings:
        from hpcgan.data.phantom_findings import FINDINGS_CLASSES, findings_plan, prepare_findings_phantom

        settings = dict(options.settings(), source="phantom", n=n, findings=True)
        prepare = partial(prepare_findings_phantom, size=options.size, fmt=options.format)
        plan = findings_plan(seed, n, n_val)
        return write_shard_set(out, settings, FINDINGS_CLASSES, plan, prepare, options, progress)
    labels = np.random.default_rng(seed).permutation(np.arange(n) % len(PHANTOM_CLASSES))
    splits = {"train": range(n - n_val), "val": range(n - n_val, n)}
    plan = {
        split: [
            PlannedSample(f"{split}-{i:07d}", int(labels[i]), PHANTOM_CLASSES[labels[i]], (seed, i, int(labels[i])))
            for i in indices
        ]
        for split, indices in splits.items()
        if len(indices)
    }
    settings = dict(options.settings(), source="phantom", n=n)
    prepare = partial(_prepare_phantom, size=options.size, fmt=options.format)
    return write_shard_set(out, settings, PHANTOM_CLASSES, plan, prepare, options, progress)
