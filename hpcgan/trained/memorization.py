"""Does a trained run's generator copy its training images (`hpcgan memorization`)? The run, its
shard set and the held-out split are found and checked here; the nearest-neighbour check itself is
hpcgan/eval/memorization.py. Writes memorization.json and closest-pairs.png into
RUN/memorization/step-N/ (or `--out`).

The generated images are the first N of the sequence `hpcgan eval` draws (hpcgan/models/latents.py:
image i has class i % C, the evaluation seed), so a checkpoint's memorisation and FID are measured
on the same images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hpcgan.atomic import write_json
from hpcgan.data.index import ShardSet
from hpcgan.errors import UserError
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.memorization import DEFAULT_THRESHOLD, Phase, check_memorization, split_loader
from hpcgan.models.latents import EVAL_SEED
from hpcgan.runs.records import read_run_config
from hpcgan.trained.generator import load_generator

REPORT_NAME = "memorization.json"
PAIRS_NAME = "closest-pairs.png"
RESULTS = "memorization"  # RUN/memorization/step-N/


@dataclass(frozen=True)
class MemorizationOptions:
    n: int = 2000  # generated images
    extractor: str = "random"
    weights: str | None = None  # the extractor's weights file
    split: str = "train"  # the real images the generator may have copied
    threshold: float | None = None  # near copy: < threshold x the real leave-one-out median (None: 0.5)
    pairs: int = 16  # closest pairs to list and draw
    out: Path | None = None  # None: RUN/memorization/step-N
    batch_size: int = 64


def check_options(o: MemorizationOptions) -> float:
    """The checks that need no checkpoint; returns the threshold to use."""
    if o.n < 1:
        raise UserError(f"--n {o.n}: expected at least 1 generated image (thousands for a clear picture)")
    if o.pairs < 1:
        raise UserError(f"--pairs {o.pairs}: expected at least 1")
    if o.batch_size < 1:
        raise UserError(f"--batch-size {o.batch_size}: expected at least 1")
    threshold = DEFAULT_THRESHOLD if o.threshold is None else o.threshold
    if not threshold > 0:
        raise UserError(f"--threshold {o.threshold}: expected a fraction > 0 of the median real NN distance")
    return threshold


def heldout_split(shard_set: ShardSet, split: str) -> str | None:
    """The real images the generator never saw: the first non-empty one of val, test, train that is not `split`."""
    for name in ("val", "test", "train"):
        if name != split and name in shard_set.splits and shard_set.count(name) > 0:
            return name
    return None


def run_memorization(run: Path, o: MemorizationOptions, phase: Phase | None = None) -> tuple[dict[str, Any], Path]:
    """(report, the folder it was written to) for RUN (a run dir or a checkpoint inside one)."""
    threshold = check_options(o)
    extractor, identity = build_extractor(o.extractor, weights=o.weights)
    gen = load_generator(run, "cpu")
    shard_set = ShardSet.open(read_run_config(gen.run_dir)["data"])
    if shard_set.count(o.split) < 2:
        raise UserError(f"{shard_set.root}: split {o.split!r} has {shard_set.count(o.split)} image(s); "
                        "the real baseline needs at least 2")  # fmt: skip
    heldout = heldout_split(shard_set, o.split)
    # Per checkpoint: checking another one never overwrites an earlier result.
    out = o.out or gen.run_dir / RESULTS / f"step-{gen.step:07d}"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    sampler = gen.sampler(EVAL_SEED)

    def batch(size: int, k: int) -> torch.Tensor:
        # The check asks for batch k of `batch_size` images: images k*B ... k*B + size - 1 of the sequence.
        return sampler.at(torch.arange(k * o.batch_size, k * o.batch_size + size))

    started = time.perf_counter()
    train = split_loader(shard_set, o.split)
    heldout_loader = split_loader(shard_set, heldout) if heldout else None
    try:
        report = check_memorization(batch, o.n, train, extractor, heldout=heldout_loader, threshold=threshold,
                                    pairs=o.pairs, batch_size=o.batch_size, phase=phase,
                                    pairs_png=out / PAIRS_NAME)  # fmt: skip
    finally:
        train.close()
        if heldout_loader is not None:
            heldout_loader.close()
    report = {
        "run": str(gen.run_dir), "checkpoint": str(gen.checkpoint), "step": gen.step, "generator": gen.which,
        "extractor": identity, "data": str(shard_set.root), "split": o.split, "heldout_split": heldout,
        "train_order": "ShardLoader seed 0, one epoch, 1 rank",
        "generated_latents": f"image i: class i % {sampler.classes}, seed {EVAL_SEED}, as hpcgan eval",
        "batch_size": o.batch_size, **report, "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    write_json(out / REPORT_NAME, report)
    return report, out
