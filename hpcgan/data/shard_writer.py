"""Write a shard set: ordered samples -> `<split>-%06d.tar` WebDataset shards + index.json.

The output is a pure function of the plan and the settings: samples are prepared in parallel but
packed in plan order, and tar headers carry no time or owner, so re-running gives byte-identical
shards. Each shard is written under a temporary name, fsynced and renamed; `.progress.json` then
records it, so an interrupted run resumes after its last complete shard.

One writer per OUT: a job holds OUT/.lock (flock) while it writes, and a second job into the same
OUT stops at once. Temp names are unique per process; those a killed job left are removed when the
next job starts. A failed write (disk full, quota) is one line naming the file; the shards
committed before it stay, and re-running resumes after them.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import secrets
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import webdataset as wds

from hpcgan.atomic import atomic_open, fsync_dir, sha256_file, write_json
from hpcgan.data.formats import EXTENSIONS
from hpcgan.data.index import INDEX_NAME, content_hash
from hpcgan.data.label_sets import SEPARATOR, encode_hot, hot_of, set_name
from hpcgan.data.shard_options import ShardLimits, ShardOptions
from hpcgan.errors import UserError
from hpcgan.file_lock import LockHeld, LockUnsupported, exclusive_lock

PROGRESS_NAME = ".progress.json"
LOCK_NAME = ".lock"
# Temp files of our own writers (shards, and atomic_open's for the json/csv files), the only ones
# removed at start: OUT may be a folder that holds other files of the user's.
ORPHAN_PATTERNS = (".*.tar.tmp", ".*.tar.*.tmp", f".{INDEX_NAME}.*.tmp", f".{PROGRESS_NAME}.*.tmp",
                   ".skipped.csv.*.tmp")  # fmt: skip
SKIPPED_NAME = "skipped.csv"
INDEX_FORMAT_VERSION = 1


@dataclass(frozen=True)
class PlannedSample:
    """One sample to write: `job` is what `prepare` turns into image bytes and metadata. `findings`
    (multi-label sets only) is the sample's label set; `label` is then its first class and
    `class_name` the set's name (hpcgan/data/label_sets.py)."""

    key: str
    label: int
    class_name: str
    job: Any
    findings: tuple[str, ...] | None = None


def planned_multi_label(key: str, findings: tuple[str, ...], classes: list[str], job: Any) -> PlannedSample:
    """A multi-label sample: its class index is its first class (NO_FINDING when it has none)."""
    hot = hot_of(findings, classes)
    return PlannedSample(key, hot.index(1), set_name(findings, classes), job, tuple(findings))


@dataclass(frozen=True)
class Prepared:
    image: bytes
    meta: dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass
class _OpenShard:
    name: str
    first: int  # plan index of the first item this shard covers
    tmp: Path
    handle: Any
    writer: wds.TarWriter
    count: int = 0
    nbytes: int = 0
    histogram: Counter = field(default_factory=Counter)  # images per class (per finding when multi-label)
    combinations: Counter = field(default_factory=Counter)  # images per label set (multi-label only)


def write_shard_set(
    out: Path,
    settings: dict[str, Any],
    classes: list[str],
    plan: dict[str, list[PlannedSample]],
    prepare: Callable[[Any], Prepared | Skipped],
    options: ShardOptions,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write (or resume writing) the shard set in `out` and return its index."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    try:
        with exclusive_lock(out / LOCK_NAME):
            return _write_locked(out, settings, classes, plan, prepare, options, progress)
    except LockHeld:
        raise UserError(f"{out}: another shard job is writing into it (it holds {out / LOCK_NAME}); "
                        "wait for it to finish or choose another folder") from None  # fmt: skip
    except LockUnsupported as exc:
        warnings.warn(f"{exc.strerror}; writing without a lock (run one shard job per folder)", stacklevel=2)
        return _write_locked(out, settings, classes, plan, prepare, options, progress)


def _write_locked(out, settings, classes, plan, prepare, options, progress) -> dict[str, Any]:
    ext, limits = EXTENSIONS[options.format], options.limits()
    _remove_orphans(out)
    index = _existing_index(out, settings)
    if index is not None:
        return index  # already complete with these settings
    state = _load_progress(out, settings)
    with _pool(options.workers) as pool:
        for split, samples in plan.items():
            split_state = state["splits"].setdefault(split, {"shards": [], "skipped": []})
            done = split_state["shards"][-1]["end"] if split_state["shards"] else 0
            if progress:
                progress(done)
            todo = samples[done:]
            results = (
                pool.imap(prepare, [s.job for s in todo], chunksize=4) if pool else map(prepare, (s.job for s in todo))
            )
            _pack_split(out, split, todo, results, done, ext, limits, state, split_state, progress, classes)
    with _writing(out / SKIPPED_NAME):
        _write_skipped(out, state)
    multi_label = any(sample.findings is not None for samples in plan.values() for sample in samples)
    index = _build_index(settings, classes, state, ext, multi_label)
    if not index["splits"]:
        raise UserError(
            f"{settings.get('source')}: no usable image "
            f"({index['skipped']} file(s) skipped, reasons in {out / SKIPPED_NAME})"
        )
    with _writing(out / INDEX_NAME):
        write_json(out / INDEX_NAME, index)
    (out / PROGRESS_NAME).unlink(missing_ok=True)  # after the index: a failed index write can resume
    return index


def _remove_orphans(out: Path) -> None:
    """Temp files of jobs that were killed (we hold the lock: no live writer owns any)."""
    for pattern in ORPHAN_PATTERNS:
        for stale in out.glob(pattern):
            stale.unlink(missing_ok=True)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OSError while writing `path` (disk full, quota, permissions) becomes one line naming it."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"{path}: could not write ({exc.strerror or exc}); the shards written before are kept, "
                        "re-run the same command to resume") from None  # fmt: skip


def _pack_split(out, split, todo, results, start, ext, limits, state, split_state, progress, classes) -> None:
    shard: _OpenShard | None = None
    try:
        for offset, (sample, result) in enumerate(zip(todo, results, strict=True)):
            position = start + offset
            if progress:
                progress(1)
            if isinstance(result, Skipped):
                split_state["skipped"].append([position, result.source, result.reason])
                continue
            member = _members(sample, result, ext, classes)
            size = sum(len(v) for k, v in member.items() if k != "__key__")
            if shard is not None and _full(shard, size, limits):
                _close(out, shard, position, state, split_state)
                shard = None
            if shard is None:
                shard = _open(out, split, len(split_state["shards"]), position)
            with _writing(out / shard.name):
                shard.writer.write(member)
            shard.count += 1
            shard.nbytes += size
            shard.histogram.update(sample.class_name.split(SEPARATOR) if sample.findings is not None
                                   else [sample.class_name])  # fmt: skip
            if sample.findings is not None:
                shard.combinations[sample.class_name] += 1
        if shard is not None:
            _close(out, shard, start + len(todo), state, split_state)
            shard = None
    finally:
        if shard is not None:  # failed or interrupted mid-shard: drop its temp file
            _discard(shard)


def _discard(shard: _OpenShard) -> None:
    """Drop an unfinished shard. Its tar stream is marked closed first: closing it (or garbage
    collection doing so later) would write the end of the archive into a closed or full file."""
    tar = shard.writer.tarstream
    tar.closed = True
    if tar.fileobj is not shard.handle:  # tarfile's pipe-mode _Stream between the two
        tar.fileobj.closed = True
    with suppress(OSError):
        shard.handle.close()
    shard.tmp.unlink(missing_ok=True)


def _members(sample: PlannedSample, result: Prepared, ext: str, classes: list[str]) -> dict[str, Any]:
    meta = dict(result.meta, class_name=sample.class_name, label=sample.label)
    member = {"__key__": sample.key, ext: result.image, "cls": str(sample.label).encode()}
    if sample.findings is not None:
        hot = hot_of(sample.findings, classes)
        meta["findings"] = [c for c, v in zip(classes[:-1], hot, strict=False) if v]
        member["hot"] = encode_hot(hot)
    member["json"] = json.dumps(meta, sort_keys=True).encode()
    return member


def _full(shard: _OpenShard, size: int, limits: ShardLimits) -> bool:
    return (limits.max_count and shard.count >= limits.max_count) or shard.nbytes + size > limits.max_bytes


def _open(out: Path, split: str, number: int, first: int) -> _OpenShard:
    name = f"{split}-{number:06d}.tar"
    tmp = out / f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"  # unique per process and attempt
    with _writing(out / name):
        handle = tmp.open("wb")
    # Fixed owner and mtime: tar headers then depend on content only (byte-identical re-runs).
    writer = wds.TarWriter(handle, user="hpcgan", group="hpcgan", mtime=0.0)
    return _OpenShard(name=name, first=first, tmp=tmp, handle=handle, writer=writer)


def _close(out: Path, shard: _OpenShard, end: int, state: dict, split_state: dict) -> None:
    with _writing(out / shard.name):
        shard.writer.close()
        shard.handle.flush()
        os.fsync(shard.handle.fileno())
        shard.handle.close()
        os.replace(shard.tmp, out / shard.name)
        fsync_dir(out)
    split_state["shards"].append(
        {
            "name": shard.name,
            "first": shard.first,
            "end": end,
            "count": shard.count,
            "bytes": (out / shard.name).stat().st_size,
            "sha256": sha256_file(out / shard.name),
            "histogram": dict(sorted(shard.histogram.items())),
            **({"combinations": dict(sorted(shard.combinations.items()))} if shard.combinations else {}),
        }
    )
    with _writing(out / PROGRESS_NAME):
        write_json(out / PROGRESS_NAME, state)


def _existing_index(out: Path, settings: dict) -> dict | None:
    path = out / INDEX_NAME
    if not path.exists():
        return None
    try:
        index = json.loads(path.read_text())
        _refuse_other_settings(out, index.get("settings", {}), settings)
        shards = [(shard["name"], shard["bytes"]) for split in index["splits"].values() for shard in split["shards"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: unreadable ({type(exc).__name__}: {exc}); delete {out} and re-shard") from None
    for name, nbytes in shards:
        file = out / str(name)
        if not file.is_file():
            raise UserError(f"{file}: listed in {INDEX_NAME} but missing; delete {out} and re-shard")
        if (size := file.stat().st_size) != nbytes:
            raise UserError(f"{file}: {size} bytes, {INDEX_NAME} says {nbytes}; delete {out} and re-shard")
    return index


def _load_progress(out: Path, settings: dict) -> dict:
    path = out / PROGRESS_NAME
    if not path.exists():
        if any(out.glob("*.tar")):
            raise UserError(f"{out}: holds shards but no {INDEX_NAME} or {PROGRESS_NAME}; choose an empty folder")
        return {"settings": settings, "splits": {}}
    try:
        state = json.loads(path.read_text())
        _refuse_other_settings(out, state["settings"], settings)
        # Keep only the shards still intact on disk; anything after the first damaged one is redone.
        for split_state in state["splits"].values():
            kept = []
            for shard in split_state["shards"]:
                file = out / shard["name"]
                if not file.is_file() or file.stat().st_size != shard["bytes"]:
                    break
                kept.append(shard)
            split_state["shards"] = kept
            end = kept[-1]["end"] if kept else 0
            split_state["skipped"] = [row for row in split_state["skipped"] if row[0] < end]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(f"{path}: unreadable ({type(exc).__name__}); delete {out} and re-shard") from None
    return state


def _refuse_other_settings(out: Path, old: dict, new: dict) -> None:
    if old == new:
        return
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:3])
    raise UserError(f"{out}: was written with other settings ({detail}); use a new output folder")


def _build_index(settings: dict, classes: list[str], state: dict, ext: str, multi_label: bool) -> dict:
    splits = {}
    for split, split_state in sorted(state["splits"].items()):
        shards = [{k: s[k] for k in ("name", "count", "bytes", "sha256")} for s in split_state["shards"]]
        histogram, combinations = Counter(), Counter()
        for shard in split_state["shards"]:
            histogram.update(shard["histogram"])
            combinations.update(shard.get("combinations", {}))
        if shards:
            splits[split] = {
                "count": sum(s["count"] for s in shards),
                "bytes": sum(s["bytes"] for s in shards),
                "histogram": {c: histogram.get(c, 0) for c in classes},
                "shards": shards,
            }
            if multi_label:  # every label set with its count, most common first
                ordered = sorted(combinations.items(), key=lambda item: (-item[1], item[0]))
                splits[split]["combinations"] = dict(ordered)
    return {
        "format_version": INDEX_FORMAT_VERSION,
        "settings": settings,
        "label_mode": "multi" if multi_label else "single",
        "classes": classes,
        "image_size": settings["size"],
        "extension": ext,
        "splits": splits,
        "skipped": sum(len(s["skipped"]) for s in state["splits"].values()),
        "content_hash": content_hash(splits),
    }


def _write_skipped(out: Path, state: dict) -> None:
    buf = io.StringIO()
    rows = csv.writer(buf)
    rows.writerow(["split", "source", "reason"])
    for split, split_state in sorted(state["splits"].items()):
        for _, source, reason in split_state["skipped"]:
            rows.writerow([split, source, reason])
    with atomic_open(out / SKIPPED_NAME, "w") as handle:
        handle.write(buf.getvalue())


class _pool:
    """A process pool when workers > 1, else None (prepare runs in this process)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = None

    def __enter__(self) -> Any:
        if self.workers > 1:
            # fork is cheap; the children only run `prepare`, which shares no lock with the
            # parent's threads (the progress bar's refresh thread).
            self.pool = multiprocessing.get_context("fork").Pool(self.workers)
        return self.pool

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
