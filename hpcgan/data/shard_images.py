"""`hpcgan shard`: a dataset in any supported layout -> a WebDataset shard set."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hpcgan.data.finding_sources import discover_multi_label, label_mode
from hpcgan.data.formats import encode
from hpcgan.data.label_sets import NO_FINDING
from hpcgan.data.pixels import UnreadableImage
from hpcgan.data.preprocess import decode_source, square
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.shard_writer import PlannedSample, Prepared, Skipped, planned_multi_label, write_shard_set
from hpcgan.data.sources import SourceImage, detect_layout, discover

MIN_SOURCE_SIDE = 16  # px; smaller files are icons or thumbnails, not radiographs


def shard_images(
    src: Path,
    out: Path,
    options: ShardOptions,
    layout: str = "auto",
    classes: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    labels: str | None = None,
    uncertain: str | None = None,
) -> dict[str, Any]:
    """Shard every usable image under `src` into `out`; return the index. `labels` is single, multi
    or None (the layout's default, sources.label_mode); `uncertain` maps a CSV's -1 (default zero)."""
    resolved_layout = detect_layout(src) if layout == "auto" else layout
    multi = label_mode(src, resolved_layout, labels, uncertain) == "multi"
    label_settings: dict[str, Any] = {}  # none for single-label sets: their index stays as it was
    if multi:
        source = discover_multi_label(src, resolved_layout, classes, uncertain or "zero")
        images, class_names = source.images, [*source.findings, NO_FINDING]
        label_settings["labels"] = "multi"
        if resolved_layout == "csv":
            label_settings["uncertain"] = uncertain or "zero"
    else:
        images = discover(src, resolved_layout, classes)
        class_names = classes or sorted({im.class_name for im in images})
    root = src.parent if src.is_file() else src
    settings = dict(
        options.settings(),
        source=str(src.resolve()),
        layout=resolved_layout,
        classes=class_names,
        **label_settings,
        source_fingerprint=_fingerprint(images, root),
    )
    plan = _plan(images, class_names, root, options)
    if on_total:
        on_total(sum(len(v) for v in plan.values()))
    prepare = partial(prepare_file, size=options.size, fit=options.fit, fmt=options.format)
    return write_shard_set(out, settings, class_names, plan, prepare, options, progress)


def _fingerprint(images: list[SourceImage], root: Path) -> str:
    """Which files, of which sizes: a changed source is refused rather than mixed into a resume."""
    digest = hashlib.sha256()
    for im in images:
        size = im.path.stat().st_size if im.path.is_file() else -1
        # A label set's findings go in too (a changed label file is refused); single-label lines as before.
        findings = "" if im.findings is None else "\0" + "|".join(im.findings)
        digest.update(f"{_relative(im.path, root)}\0{im.class_name}\0{im.split}\0{size}{findings}\n".encode())
    return digest.hexdigest()


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _plan(
    images: list[SourceImage], classes: list[str], root: Path, options: ShardOptions
) -> dict[str, list[PlannedSample]]:
    """Split, then shuffle each split with the seed so that every shard mixes classes."""
    rng = np.random.default_rng(options.seed)
    by_split: dict[str, list[SourceImage]] = {}
    unsplit = [im for im in images if im.split is None]
    n_val = round(len(unsplit) * options.val_fraction)
    val_ids = {id(unsplit[i]) for i in rng.permutation(len(unsplit))[:n_val]}
    for im in images:
        split = im.split or ("val" if id(im) in val_ids else "train")
        by_split.setdefault(split, []).append(im)
    plan = {}
    for split in sorted(by_split):
        members = by_split[split]
        order = np.random.default_rng([options.seed, _stable_int(split)]).permutation(len(members))
        plan[split] = [_planned(f"{split}-{i:07d}", members[j], classes, root) for i, j in enumerate(order)]
    return plan


def _planned(key: str, im: SourceImage, classes: list[str], root: Path) -> PlannedSample:
    job = (str(im.path), _relative(im.path, root))
    if im.findings is not None:
        return planned_multi_label(key, im.findings, classes, job)
    return PlannedSample(key=key, label=classes.index(im.class_name), class_name=im.class_name, job=job)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def prepare_file(job: tuple[str, str], size: int, fit: str, fmt: str) -> Prepared | Skipped:
    """Read, decode, square and encode one source file (runs in a worker process)."""
    path, rel = job
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Skipped(rel, f"unreadable: {exc.strerror or exc}")
    try:
        gray = decode_source(data)
    except UnreadableImage as exc:
        return Skipped(rel, str(exc))
    height, width = gray.shape
    if min(height, width) < MIN_SOURCE_SIDE:
        return Skipped(rel, f"too small ({width}x{height})")
    meta = {"source": rel, "orig_size": [width, height], "sha256": hashlib.sha256(data).hexdigest()}
    return Prepared(encode(square(gray, size, fit), fmt), meta)
