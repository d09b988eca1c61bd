"""Synthetic datasets from a trained run (`hpcgan sample`).

The run's generator (hpcgan/trained/generator.py) draws N images: split evenly across the classes
of a conditional run, all of one `--class`, or one class "synthetic" for an unconditional run. They
are written as PNG folders (OUT/<class>/<class>-000000.png) or as a shard set that `hpcgan train
--data` and `hpcgan inspect` read like any other. Image k of a class has the latent z(seed, class, k)
(hpcgan/models/latents.py), so the output is a pure function of the checkpoint and the options, and
image k of a class does not depend on N, the batch size or the other classes.

A multi-label run (conditioned on label sets, hpcgan/data/label_sets.py) draws label sets instead:
`--labels SET` (repeatable; N split evenly across the sets given) or, without it, image i has the
set LabelSets.evaluation_names gives i (the training distribution). `--fill-to M` then appends, for
every class with fewer than M real training images, as many images as it is short, each of a set
holding that class drawn from the training sets that hold it in proportion to their counts (seeded
by --seed and the class). The k-th image of set S in an export is image k of S, z(seed, bitmask of
S, k). PNG exports write OUT/<set>/<set>-000000.png (the set's name with '|' as '+') and
OUT/labels.csv (file, label_set, one 0/1 column per finding, a row per image in export order);
shard exports write a multi-label shard set (a `.hot` member per image).
"""

from __future__ import annotations

import csv
import hashlib
import io
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
from hpcgan.data.label_sets import NO_FINDING, SEPARATOR
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.shard_writer import (
    PROGRESS_NAME,
    PlannedSample,
    Prepared,
    planned_multi_label,
    write_shard_set,
)
from hpcgan.errors import UserError
from hpcgan.models.latents import LATENT_RULE, LatentSampler
from hpcgan.trained.export_plan import class_counts, plan_label_sets
from hpcgan.trained.generator import LoadedGenerator

FORMATS = ("png", "shards")
MANIFEST_NAME = "sample.json"  # what a png export records (a shard export has index.json)
LABELS_CSV = "labels.csv"  # a multi-label png export's label set per image


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
            self.start, self.batch = k, self._draw(ks)[:, 0].numpy()
        return self.batch[k - self.start]

    def _draw(self, ks: torch.Tensor) -> torch.Tensor:
        return self.sampler.of_class(self.label, ks)


class SetImages(ClassImages):
    """Image k of one label set of a multi-label run, a batch at a time as ClassImages. The batch
    is dropped once its set's last image was asked for: a shard export reads every set's stream
    in turn, so only sets still in progress hold one."""

    def __init__(self, sampler: LatentSampler, name: str, count: int, batch_size: int) -> None:
        super().__init__(sampler, -1, count, batch_size)
        self.name = name

    def image(self, k: int) -> np.ndarray:
        gray = super().image(k)
        if k == self.count - 1:
            self.start, self.batch = 0, np.empty((0, 0, 0), np.uint8)
        return gray

    def _draw(self, ks: torch.Tensor) -> torch.Tensor:
        return self.sampler.of_set(self.name, ks)


@dataclass
class ExportResult:
    out: Path
    format: str
    classes: list[str]
    counts: list[int]
    index: dict[str, Any] = field(default_factory=dict)  # the shard set's index.json (shards only)
    already_done: bool = False
    # Multi-label runs: images per label set (counts are then images per class, a set counting
    # under each of its findings) and the images --fill-to added per class.
    label_sets: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)

    @property
    def images(self) -> int:
        return sum(self.label_sets.values()) if self.label_sets else sum(self.counts)


def check_options(n: int | None, fmt: str, batch_size: int, seed: int = 0, fill_to: int | None = None) -> None:
    """The checks that need no checkpoint (so a typo fails before a large checkpoint loads)."""
    if n is None and fill_to is None:
        raise UserError("--n: how many images? (or --fill-to N on a multi-label run)")
    if n is not None and n < 1:
        raise UserError(f"--n {n}: expected at least 1 image")
    if fill_to is not None and fill_to < 1:
        raise UserError(f"--fill-to {fill_to}: expected at least 1 image per finding")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: expected at least 1")
    if seed < 0:
        raise UserError(f"--seed {seed}: expected 0 or more")


def export_samples(
    gen: LoadedGenerator,
    out: str | Path,
    n: int | None,
    fmt: str = "png",
    class_name: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    shard_size: str = "1000",
    progress: Callable[[int], None] | None = None,
    labels: list[str] | None = None,
    fill_to: int | None = None,
    allow_unseen: bool = False,
) -> ExportResult:
    """Generate `n` images with `gen` into `out` as PNG folders or a shard set (split "train").
    `labels`, `fill_to` and `allow_unseen` are for multi-label runs (see the module docstring)."""
    out = Path(out)
    check_options(n, fmt, batch_size, seed, fill_to)
    if gen.multi_label:
        return _export_multi_label(gen, out, n, fmt, class_name, seed, batch_size, shard_size, progress, labels,
                                   fill_to, allow_unseen)  # fmt: skip
    _refuse_multi_label_options(gen, labels, fill_to)
    only = _class_index(gen, class_name)
    classes = gen.classes
    counts = class_counts(n, len(classes), only)
    settings = _export_settings(gen, fmt, seed, n, shard_size, **{"class": class_name})
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


def _refuse_multi_label_options(gen: LoadedGenerator, labels: list[str] | None, fill_to: int | None) -> None:
    if not labels and fill_to is None:
        return
    flag = f"--labels {labels[0]}" if labels else f"--fill-to {fill_to}"
    if not gen.conditional:
        raise UserError(f"{flag}: {gen.checkpoint} is an unconditional GAN (model.conditional=none) and draws no "
                        "labels; drop it")  # fmt: skip
    hint = "pick a class with --class NAME" if labels else "use --n N (split evenly) or --class NAME"
    raise UserError(f"{flag}: this run is single-label (classes {', '.join(gen.run_classes)}), not trained on label "
                    f"sets; {hint}")  # fmt: skip


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
        return _synthetic_sample(gen, settings["seed"], f"class={classes[label]}", k, gray)

    # One worker: generation runs here in batches; `prepare` only slices and encodes.
    options = ShardOptions(size=gen.resolution, format="png", shard_size=shard_size, seed=settings["seed"], workers=1)
    return write_shard_set(out, settings, classes, {"train": plan}, prepare, options, progress)


def _synthetic_sample(gen: LoadedGenerator, seed: int, drawn: str, k: int, gray: np.ndarray, **extra: Any) -> Prepared:
    """One generated image for a shard export, with where it came from (`drawn`: its class or set)."""
    meta = {
        "synthetic": True,
        "source": f"synthetic:{gen.checkpoint}:seed={seed}:{drawn}:index={k}",
        "run": str(gen.run_dir),
        "checkpoint_step": gen.step,
        "generator": gen.which,
        "seed": seed,
        **extra,
        "index": k,
        "orig_size": [gen.resolution, gen.resolution],
        "sha256": hashlib.sha256(gray.tobytes()).hexdigest(),
    }
    return Prepared(encode(gray, "png"), meta)


# -- multi-label runs ---------------------------------------------------------------------------


def set_folder(name: str) -> str:
    """A label set's folder (and file prefix) in a PNG export: its name with '|' as '+'."""
    return name.replace(SEPARATOR, "+")


def _export_settings(gen, fmt: str, seed: int, n: int, shard_size: str, **request) -> dict:
    """What an export into an existing OUT must repeat to resume it; `request` is what was asked for."""
    settings = {
        "source": "sample",
        "export": fmt,
        "size": gen.resolution,
        "seed": seed,
        "n": n,
        **request,
        "run": str(gen.run_dir),
        "checkpoint": str(gen.checkpoint),
        "checkpoint_sha256": gen.checkpoint_sha256,
        "step": gen.step,
        "generator": gen.which,
        "latents": LATENT_RULE,  # an export begun under another rule is refused, never mixed
    }
    if fmt == "shards":
        settings.update(format="png", shard_size=shard_size)
    return settings


def _export_multi_label(gen, out, n, fmt, class_name, seed, batch_size, shard_size, progress, labels, fill_to,
                        allow_unseen) -> ExportResult:  # fmt: skip
    label_sets = gen.label_sets
    if class_name is not None:
        raise UserError(
            f"--class {class_name}: this run is multi-label (findings {', '.join(label_sets.classes)}); "
            "ask for a label set with --labels 'A|B' (repeatable), or top findings up with --fill-to N"
        )
    plan = plan_label_sets(label_sets, n, labels, fill_to, seed, allow_unseen)
    classes = list(label_sets.classes)
    per_set = plan.counts
    per_class = [sum(count for name, count in per_set.items() if cls in name.split(SEPARATOR)) for cls in classes]
    labels_asked = list(dict.fromkeys(plan.names[:n])) if labels else None  # canonical names
    settings = _export_settings(gen, fmt, seed, n, shard_size, labels=labels_asked, fill_to=fill_to)
    result = ExportResult(out, fmt, classes, per_class, label_sets=per_set, added=plan.added)
    manifest = {"settings": settings, "classes": classes, "counts": dict(zip(classes, per_class, strict=True)),
                "label_sets": per_set, **({"added": plan.added} if fill_to is not None else {})}  # fmt: skip
    if _check_out(out, fmt, settings):
        if progress:
            progress(len(plan.names))
        result.already_done = True
        return result
    sampler = gen.sampler(seed)
    if fmt == "png":
        _write_label_pngs(out, manifest, label_sets, plan, sampler, batch_size, progress)
        return result
    result.index = _write_label_shards(out, settings, gen, plan, sampler, batch_size, shard_size, progress)
    write_json(out / MANIFEST_NAME, dict(manifest, complete=True))  # after the index: what --fill-to added
    return result


def _write_label_pngs(out, manifest, label_sets, plan, sampler, batch_size, progress) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MANIFEST_NAME, dict(manifest, labels_file=LABELS_CSV, complete=False))
    for name, count in plan.counts.items():  # set by set: one batch in memory at a time
        folder = set_folder(name)
        (out / folder).mkdir(exist_ok=True)
        stream = SetImages(sampler, name, count, batch_size)
        for k in range(count):
            write_bytes(out / folder / f"{folder}-{k:06d}.png", encode(stream.image(k), "png"))
            if progress:
                progress(1)
    buf = io.StringIO()
    rows = csv.writer(buf, lineterminator="\n")
    rows.writerow(["file", "label_set", *label_sets.findings])  # No Finding: every finding column 0
    for name, k in zip(plan.names, plan.ks, strict=True):
        folder = set_folder(name)
        rows.writerow([f"{folder}/{folder}-{k:06d}.png", name, *label_sets.hot(name)[:-1]])
    write_bytes(out / LABELS_CSV, buf.getvalue().encode())
    write_json(out / MANIFEST_NAME, dict(manifest, labels_file=LABELS_CSV, complete=True))


def _write_label_shards(out, settings, gen, plan, sampler, batch_size, shard_size, progress) -> dict[str, Any]:
    # A seeded shuffle (every shard mixes label sets); the k-th occurrence of a set in it is image k
    # of the set, so each set's stream is read in order, and the images are those of a PNG export.
    classes = list(gen.label_sets.classes)
    names = [plan.names[j] for j in np.random.default_rng(settings["seed"]).permutation(len(plan.names)).tolist()]
    streams = {name: SetImages(sampler, name, count, batch_size) for name, count in plan.counts.items()}
    seen: dict[str, int] = {}
    samples = []
    for i, name in enumerate(names):
        k = seen.get(name, 0)
        seen[name] = k + 1
        findings = tuple(f for f in name.split(SEPARATOR) if f != NO_FINDING)
        samples.append(planned_multi_label(f"train-{i:07d}", findings, classes, (name, k)))

    def prepare(job: tuple[str, int]) -> Prepared:
        name, k = job
        gray = streams[name].image(k)
        return _synthetic_sample(gen, settings["seed"], f"labels={name}", k, gray, label_set=name)

    options = ShardOptions(size=gen.resolution, format="png", shard_size=shard_size, seed=settings["seed"], workers=1)
    return write_shard_set(out, settings, classes, {"train": samples}, prepare, options, progress)
