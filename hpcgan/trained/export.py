"""Synthetic datasets from a trained run (`hpcgan sample`).

The run's generator (hpcgan/trained/generator.py) draws N images: split evenly across the classes
of a conditional run, all of one `--class`, or one class "synthetic" for an unconditional run. They
are written as PNG folders (OUT/<class>/<class>-000000.png) or as a shard set that `hpcgan train
--data` and `hpcgan inspect` read like any other. Image k of a class has the latent z(seed, class, k)
(hpcgan/models/latents.py), so the output is a pure function of the checkpoint and the options, and
image k of a class does not depend on N, the batch size or the other classes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpcgan.atomic import write_bytes, write_json
from hpcgan.data.formats import encode
from hpcgan.data.index import INDEX_NAME
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.shard_writer import PROGRESS_NAME, PlannedSample, Prepared, write_shard_set
from hpcgan.errors import UserError
from hpcgan.models.latents import LATENT_RULE, LatentSampler
from hpcgan.trained.generator import LoadedGenerator

FORMATS = ("png", "shards")
MANIFEST_NAME = "sample.json"  # what a png export records (a shard export has index.json)


def class_counts(n: int, num_classes: int, only: int | None = None) -> list[int]:
    """Images per class: all `n` to class `only`, else `n` split evenly, the remainder to the first classes."""
    if only is not None:
        return [n if i == only else 0 for i in range(num_classes)]
    base, extra = divmod(n, num_classes)
    return [base + (i < extra) for i in range(num_classes)]


class ClassImages:
    """Image k of one class, generated a batch at a time from k on (an export asks for k, k+1, ...;
    a resumed shard export starts mid-way, which costs nothing: image k needs no earlier draw)."""

    def __init__(self, sampler: LatentSampler, label: int, count: int, batch_size: int) -> None:
        self.sampler, self.label, self.count, self.batch_size = sampler, label, count, batch_size
        self.start, self.batch = 0, np.empty((0, 0, 0), np.uint8)

    def image(self, k: int) -> np.ndarray:
        """uint8 [S, S]."""
        if not self.start <= k < self.start + len(self.batch):
            ks = torch.arange(k, min(k + self.batch_size, self.count))
            self.start, self.batch = k, self.sampler.of_class(self.label, ks)[:, 0].numpy()
        return self.batch[k - self.start]


def synthetic_set(
    gen: LoadedGenerator, counts: list[int], seed: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 1, S, S], int64 labels [N]) with counts[c] images of class c, in memory:
    the same images `hpcgan sample --seed SEED` writes for those counts."""
    sampler = gen.sampler(seed)
    images = [sampler.of_class(label, ks) for label, count in enumerate(counts)
              for ks in torch.arange(count).split(batch_size)]  # fmt: skip
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    empty = torch.empty((0, 1, gen.resolution, gen.resolution), dtype=torch.uint8)
    return (torch.cat(images) if images else empty), labels.long()


@dataclass
class ExportResult:
    out: Path
    format: str
    classes: list[str]
    counts: list[int]
    index: dict[str, Any] = field(default_factory=dict)  # the shard set's index.json (shards only)
    already_done: bool = False


def check_options(n: int, fmt: str, batch_size: int, seed: int = 0) -> None:
    """The checks that need no checkpoint (so a typo fails before a large checkpoint loads)."""
    if n < 1:
        raise UserError(f"--n {n}: expected at least 1 image")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: expected at least 1")
    if seed < 0:
        raise UserError(f"--seed {seed}: expected 0 or more")


def export_samples(
    gen: LoadedGenerator,
    out: str | Path,
    n: int,
    fmt: str = "png",
    class_name: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    shard_size: str = "1000",
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Generate `n` images with `gen` into `out` as PNG folders or a shard set (split "train")."""
    out = Path(out)
    check_options(n, fmt, batch_size, seed)
    only = _class_index(gen, class_name)
    classes = gen.classes
    counts = class_counts(n, len(classes), only)
    settings = {
        "source": "sample",
        "export": fmt,
        "size": gen.resolution,
        "seed": seed,
        "n": n,
        "class": class_name,
        "run": str(gen.run_dir),
        "checkpoint": str(gen.checkpoint),
        "checkpoint_sha256": gen.checkpoint_sha256,
        "step": gen.step,
        "generator": gen.which,
        "latents": LATENT_RULE,  # an export begun under another rule is refused, never mixed
    }
    if fmt == "shards":
        settings.update(format="png", shard_size=shard_size)
    if _check_out(out, fmt, settings):
        if progress:
            progress(n)
        return ExportResult(out, fmt, classes, counts, already_done=True)
    sampler = gen.sampler(seed)
    streams = [ClassImages(sampler, label, count, batch_size) for label, count in enumerate(counts)]
    if fmt == "png":
        _write_pngs(out, settings, classes, counts, streams, progress)
        return ExportResult(out, fmt, classes, counts)
    index = _write_shards(out, settings, gen, classes, counts, streams, shard_size, progress)
    return ExportResult(out, fmt, classes, counts, index=index)


def _class_index(gen: LoadedGenerator, class_name: str | None) -> int | None:
    if class_name is None:
        return None
    if not gen.conditional:
        raise UserError(
            f"--class {class_name}: {gen.checkpoint} is an unconditional GAN (model.conditional=none) and "
            "cannot be steered to a class; drop --class"
        )
    if class_name not in gen.run_classes:
        raise UserError(f"--class {class_name}: unknown class; this run has {', '.join(gen.run_classes)}")
    return gen.run_classes.index(class_name)


def _check_out(out: Path, fmt: str, settings: dict[str, Any]) -> bool:
    """Refuse to write into anything but an empty folder or an earlier export with the same settings;
    True when that earlier export is already complete."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if fmt == "shards" and ((out / INDEX_NAME).is_file() or (out / PROGRESS_NAME).is_file()):
        return False  # write_shard_set resumes it, returns it complete, or refuses other settings
    manifest = out / MANIFEST_NAME
    if fmt == "png" and manifest.is_file():
        try:
            earlier = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            earlier = {}
        if earlier.get("settings") == settings:
            return bool(earlier.get("complete"))  # an interrupted one is redone from the start
    raise UserError(f"--out {out}: exists and is not empty; choose a new folder (exports never overwrite)")


def _write_pngs(out, settings, classes, counts, streams, progress) -> None:
    manifest = {"settings": settings, "classes": classes, "counts": dict(zip(classes, counts, strict=True))}
    out.mkdir(parents=True, exist_ok=True)
    # Written first, so a re-run of an interrupted export is recognised as its own and redone.
    write_json(out / MANIFEST_NAME, dict(manifest, complete=False))
    for name, count, stream in zip(classes, counts, streams, strict=True):
        if count:
            (out / name).mkdir(exist_ok=True)
        for k in range(count):
            write_bytes(out / name / f"{name}-{k:06d}.png", encode(stream.image(k), "png"))
            if progress:
                progress(1)
    write_json(out / MANIFEST_NAME, dict(manifest, complete=True))


def _write_shards(out, settings, gen, classes, counts, streams, shard_size, progress) -> dict[str, Any]:
    # A seeded shuffle of the class labels (as phantom shards have), so every shard mixes classes;
    # the k-th occurrence of a label is image k of its class, so each stream is read in order.
    labels = np.random.default_rng(settings["seed"]).permutation(np.repeat(np.arange(len(classes)), counts))
    seen = [0] * len(classes)
    plan = []
    for i, label in enumerate(labels.tolist()):
        plan.append(PlannedSample(f"train-{i:07d}", label, classes[label], (label, seen[label])))
        seen[label] += 1

    def prepare(job: tuple[int, int]) -> Prepared:
        label, k = job
        gray = streams[label].image(k)
        meta = {
            "synthetic": True,
            "source": f"synthetic:{gen.checkpoint}:seed={settings['seed']}:class={classes[label]}:index={k}",
            "run": str(gen.run_dir),
            "checkpoint_step": gen.step,
            "generator": gen.which,
            "seed": settings["seed"],
            "index": k,
            "orig_size": [gen.resolution, gen.resolution],
            "sha256": hashlib.sha256(gray.tobytes()).hexdigest(),
        }
        return Prepared(encode(gray, "png"), meta)

    # One worker: generation runs here in batches; `prepare` only slices and encodes.
    options = ShardOptions(size=gen.resolution, format="png", shard_size=shard_size, seed=settings["seed"], workers=1)
    return write_shard_set(out, settings, classes, {"train": plan}, prepare, options, progress)
