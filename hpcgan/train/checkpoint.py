"""Checkpoints that survive a crash at any moment.

A checkpoint is `step-NNNNNNN.pt`, written to a temporary file, fsynced and renamed, then committed
by `step-NNNNNNN.json` (its sha256 and size) written the same way. Only committed checkpoints whose
bytes match their marker are loaded, with `torch.load(weights_only=True)`: a truncated or corrupt
file is skipped with a warning and the previous one is used.

Pruning deletes only checkpoints older than the one just written: a run dir may hold newer files
this run did not write (an earlier run's, or damaged ones), and those are never this run's to
delete. Temp files of killed saves are removed by `remove_orphaned_temps` (under the run's hold).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from hpcgan.atomic import atomic_open, fsync_dir, sha256_file, write_json
from hpcgan.errors import UserError


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (disk full, quota, permissions); the ones before are intact."""


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step-{step:07d}.pt"


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write and commit step `step`, then prune: of the committed checkpoints at or below `step`,
    those older than the newest `keep` (at least 2) intact ones go. Never touches one above `step`.

    Raises CheckpointWriteError (one line naming the file) when the write fails; the temp file is
    removed and every earlier checkpoint stays as it was."""
    path = checkpoint_path(run_dir, step)
    _write_committed(path, state, {"step": step})
    prune(run_dir, step, max(2, keep))
    return path


def save_best(run_dir: Path, step: int, state: dict[str, Any], fid: float) -> Path:
    """The checkpoint with the lowest FID so far, `best.pt`, outside the rotation of the newest k.
    Raises CheckpointWriteError as save_checkpoint does (the previous best.pt is kept)."""
    path = checkpoint_dir(run_dir) / "best.pt"
    _write_committed(path, state, {"step": step, "fid": fid})
    return path


def _write_committed(path: Path, state: dict[str, Any], facts: dict[str, Any]) -> None:
    """torch.save `state` to `path` atomically, then its commit marker (`facts`, size, sha256)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as handle:
            torch.save(state, handle)
        marker = {**facts, "file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        write_json(path.with_suffix(".json"), marker)
    except (OSError, RuntimeError) as exc:
        reason = _write_failure(exc)
        if reason is None:
            raise
        if not path.with_suffix(".json").exists():
            path.unlink(missing_ok=True)  # written but never committed: no one may load it
        raise CheckpointWriteError(f"{path}: could not save ({reason}); the earlier checkpoints are kept") from None


def _write_failure(exc: BaseException) -> str | None:
    """Why a save failed, when it was the file system (disk full, quota, permissions); else None.
    torch.save turns the OSError of a failed write into a RuntimeError of its zip writer."""
    for err in (exc, exc.__context__, exc.__cause__):
        if isinstance(err, OSError):
            return err.strerror or str(err)
    return (str(exc).splitlines() or [""])[0] if "write" in str(exc) else None


def committed(run_dir: Path) -> list[Path]:
    """Checkpoint files that have a commit marker, newest first."""
    folder = checkpoint_dir(run_dir)
    markers = sorted(folder.glob("step-*.json"), reverse=True) if folder.is_dir() else []
    return [m.with_suffix(".pt") for m in markers]


def step_of(path: Path) -> int | None:
    """NNN of step-NNN.pt / step-NNN.json, else None."""
    digits = path.stem.removeprefix("step-")
    return int(digits) if path.stem.startswith("step-") and digits.isdigit() else None


def prune(run_dir: Path, newest: int, keep: int) -> list[Path]:
    """Delete the committed checkpoints at or below step `newest` that are older than the newest
    `keep` intact ones (marker readable, size matching: damaged ones do not count towards `keep`);
    return what was deleted. Steps above `newest` are left alone: another run wrote them, not the
    save that called us."""
    candidates = [p for p in committed(run_dir) if (s := step_of(p)) is not None and s <= newest]
    deleted, intact = [], 0
    for old in candidates:  # newest first
        if intact >= keep and step_of(old) != newest:
            old.with_suffix(".json").unlink(missing_ok=True)  # uncommit first, then delete
            old.unlink(missing_ok=True)
            deleted.append(old)
        elif _looks_intact(old):
            intact += 1
    return deleted


def _looks_intact(path: Path) -> bool:
    """Cheap check (no hashing): a valid marker whose size matches the file."""
    try:
        return path.stat().st_size == read_marker(path.with_suffix(".json"))["bytes"]
    except (OSError, UserError):
        return False


def read_marker(marker: Path) -> dict[str, Any]:
    """A commit marker's content, checked: a dict with an int `bytes` and a str `sha256`."""
    try:
        content = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{marker}: unreadable commit marker ({type(exc).__name__})") from None
    if (not isinstance(content, dict) or not isinstance(content.get("bytes"), int)
            or not isinstance(content.get("sha256"), str)):  # fmt: skip
        raise UserError(f"{marker}: not a commit marker (expected bytes and sha256)")
    return content


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint, verifying it against its marker when it has one."""
    if not path.is_file():
        raise UserError(f"--resume {path}: no such checkpoint")
    marker = path.with_suffix(".json")
    if marker.is_file():
        expected = read_marker(marker)
        if path.stat().st_size != expected["bytes"] or sha256_file(path) != expected["sha256"]:
            raise UserError(f"{path}: does not match its commit marker {marker.name} (truncated or corrupt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged pickles
        first_line = (str(exc).strip().splitlines() or [""])[0]  # torch's messages run to many lines
        raise UserError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {first_line})") from None


def latest_valid(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest committed checkpoint that loads; damaged ones are skipped with a warning."""
    for path in committed(run_dir):
        try:
            return path, load_checkpoint(path)
        except UserError as exc:
            warnings.warn(f"skipping checkpoint: {exc}", stacklevel=2)
    return None


def remove_orphaned_temps(run_dir: Path) -> list[Path]:
    """Delete temp files of saves that were killed (`.step-NNN.pt.*.tmp`, `.best.pt.*.tmp`, markers'),
    which can be tens of MB each. Only call this while holding the run dir (run_hold): another live
    trainer's temp file would look the same."""
    folder = checkpoint_dir(run_dir)
    removed = []
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def move_aside(run_dir: Path, names: tuple[str, ...] = ("checkpoints",)) -> Path | None:
    """Move `names` (default: the checkpoints folder) of `run_dir` into a new folder
    `run_dir/replaced-YYYYmmdd-HHMMSS[-N]/` and return it; None when none of them exists.

    For `--resume none --overwrite`: the old run's files stay on disk, out of the way of `--resume
    auto`, pruning and `hpcgan sample`. Each move is a rename (same file system, atomic)."""
    present = [run_dir / n for n in names if (run_dir / n).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for attempt in range(1000):
        aside = run_dir / (f"replaced-{stamp}" if attempt == 0 else f"replaced-{stamp}-{attempt}")
        try:
            aside.mkdir()
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a thousand replacements within one second
        raise UserError(f"{run_dir}: could not find a free name to move the old checkpoints to")
    for item in present:
        os.replace(item, aside / item.name)
    fsync_dir(run_dir)
    return aside
