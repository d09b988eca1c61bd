"""Synthetic datasets from a trained run (`hpcgan sample`).

The run's EMA generator (G itself when the run kept no EMA) draws N images: split evenly across the
classes of a conditional run, all of one `--class`, or one class "synthetic" for an unconditional
run. They are written as PNG folders (OUT/<class>/<class>-000000.png) or as a shard set that
`hpcgan train --data` and `hpcgan inspect` read like any other. Latent k of a class is draw k of a
numpy stream seeded with (seed, class index), so the output is a pure function of the checkpoint and
the options, and image k of a class does not depend on N or on the other classes.
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
from torch import nn

from hpcgan.atomic import sha256_file, write_bytes, write_json
from hpcgan.data.formats import encode
from hpcgan.data.index import INDEX_NAME
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.shard_writer import PROGRESS_NAME, PlannedSample, Prepared, write_shard_set
from hpcgan.errors import UserError
from hpcgan.train.checkpoint import checkpoint_dir, latest_valid, load_checkpoint
from hpcgan.train.config import RunConfig, networks_for

FORMATS = ("png", "shards")
SYNTHETIC_CLASS = "synthetic"  # the one class of an unconditional run's export
MANIFEST_NAME = "sample.json"  # what a png export records (a shard export has index.json)
_SKIP_CHUNK = 4096  # latents drawn at a time when skipping ahead in a stream


@dataclass(frozen=True)
class LoadedGenerator:
    """A run's generator in eval mode, and where it came from."""

    g: nn.Module
    checkpoint: Path
    checkpoint_sha256: str
    run_dir: Path
    step: int
    which: str  # "ema" or "g"
    run_classes: list[str]
    conditional: bool
    resolution: int
    z_dim: int
    device: torch.device

    @property
    def classes(self) -> list[str]:
        """The export's classes: the run's for a conditional generator, else just "synthetic"."""
        return list(self.run_classes) if self.conditional else [SYNTHETIC_CLASS]

    @torch.no_grad()
    def images(self, z: np.ndarray, label: int) -> np.ndarray:
        """Latents [B, z_dim] -> uint8 images [B, S, S] of class `label` (ignored if unconditional)."""
        z_t = torch.from_numpy(z.astype(np.float32)).to(self.device)
        labels = torch.full((len(z),), label, dtype=torch.long, device=self.device) if self.conditional else None
        out = self.g(z_t, labels).float().clamp(-1, 1)
        # The inverse of the trainer's uint8 -> [-1, 1] scaling.
        return ((out + 1) * 127.5).round().to(torch.uint8)[:, 0].cpu().numpy()


def load_generator(run: str | Path, device: str | torch.device | None = None) -> LoadedGenerator:
    """The generator of RUN: a run directory (its newest valid checkpoint) or one checkpoint file."""
    run = Path(run)
    if run.is_dir():
        found = latest_valid(run)
        if found is None:
            raise UserError(f"RUN {run}: no valid checkpoint in {checkpoint_dir(run)}; train the run first")
        path, state = found
    elif run.is_file():
        path, state = run, load_checkpoint(run)
    else:
        raise UserError(f"RUN {run}: no such run directory or checkpoint file")
    try:
        config = RunConfig.from_dict(state["config"])
        classes = [str(c) for c in state["classes"]]
        which = "ema" if state["ema"] else "g"  # train.ema=0 saves an empty dict
        weights, step = state[which], int(state["step"])
    except (KeyError, TypeError, IndexError) as exc:
        raise UserError(f"{path}: not an hpcgan training checkpoint (no {exc})") from None
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    g, _ = networks_for(config, len(classes))
    try:
        g.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: generator weights do not match its config ({first})") from None
    marker = path.with_suffix(".json")
    # load_checkpoint verified the file against its marker, so the marker's hash is the file's.
    sha = json.loads(marker.read_text())["sha256"] if marker.is_file() else sha256_file(path)
    path = path.resolve()
    return LoadedGenerator(
        g=g.to(device).eval().requires_grad_(False),
        checkpoint=path,
        checkpoint_sha256=sha,
        run_dir=path.parent.parent if path.parent.name == "checkpoints" else path.parent,
        step=step,
        which=which,
        run_classes=classes,
        conditional=config.model.conditional != "none",
        resolution=config.model.resolution,
        z_dim=config.model.z_dim,
        device=device,
    )


def class_counts(n: int, num_classes: int, only: int | None = None) -> list[int]:
    """Images per class: all `n` to class `only`, else `n` split evenly, the remainder to the first classes."""
    if only is not None:
        return [n if i == only else 0 for i in range(num_classes)]
    base, extra = divmod(n, num_classes)
    return [base + (i < extra) for i in range(num_classes)]


class ClassStream:
    """Images of one class in order, generated a batch at a time: image k's latent is draw k of the
    (seed, label) stream, however the batches fall."""

    def __init__(self, gen: LoadedGenerator, label: int, count: int, seed: int, batch_size: int) -> None:
        self.gen, self.label, self.count, self.seed, self.batch_size = gen, label, count, seed, batch_size
        self._reset()

    def _reset(self) -> None:
        self.rng = np.random.default_rng([self.seed, self.label])
        self.drawn = 0  # latents taken from the stream so far
        self.start, self.batch = 0, np.empty((0, self.gen.resolution, self.gen.resolution), np.uint8)

    def image(self, k: int) -> np.ndarray:
        if not self.start <= k < self.start + len(self.batch):
            if k < self.drawn:
                self._reset()
            while self.drawn < k:  # a resumed shard export starts mid-stream
                skip = min(k - self.drawn, _SKIP_CHUNK)
                self.rng.standard_normal((skip, self.gen.z_dim))
                self.drawn += skip
            size = min(self.batch_size, self.count - k)
            self.batch = self.gen.images(self.rng.standard_normal((size, self.gen.z_dim)), self.label)
            self.start, self.drawn = k, k + size
        return self.batch[k - self.start]


def synthetic_set(
    gen: LoadedGenerator, counts: list[int], seed: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 1, S, S], int64 labels [N]) with counts[c] images of class c, in memory:
    the same images `hpcgan sample --seed SEED` writes for those counts."""
    images = np.empty((sum(counts), 1, gen.resolution, gen.resolution), np.uint8)
    labels = np.repeat(np.arange(len(counts)), counts)
    start = 0
    for label, count in enumerate(counts):
        stream = ClassStream(gen, label, count, seed, batch_size)
        for k in range(count):
            images[start + k, 0] = stream.image(k)
        start += count
    return torch.from_numpy(images), torch.from_numpy(labels).long()


@dataclass
class ExportResult:
    out: Path
    format: str
    classes: list[str]
    counts: list[int]
    index: dict[str, Any] = field(default_factory=dict)  # the shard set's index.json (shards only)
    already_done: bool = False


def check_options(n: int, fmt: str, batch_size: int) -> None:
    """The checks that need no checkpoint (so a typo fails before a large checkpoint loads)."""
    if n < 1:
        raise UserError(f"--n {n}: expected at least 1 image")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: expected at least 1")


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
    check_options(n, fmt, batch_size)
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
    }
    if fmt == "shards":
        settings.update(format="png", shard_size=shard_size)
    if _check_out(out, fmt, settings):
        if progress:
            progress(n)
        return ExportResult(out, fmt, classes, counts, already_done=True)
    streams = [ClassStream(gen, label, count, seed, batch_size) for label, count in enumerate(counts)]
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
