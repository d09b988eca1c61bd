"""Writing and loading checkpoints so that they survive a crash at any moment.

A checkpoint is written to a temporary file, fsynced and renamed, then committed by its marker
(hpcgan/runs/checkpoints.py), written the same way. Only committed checkpoints whose bytes match
their marker are loaded, with `torch.load(weights_only=True)`: a truncated or corrupt file is skipped
with a warning and the previous one is used.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from hpcgan.atomic import atomic_open, sha256_file, write_json
from hpcgan.errors import UserError
from hpcgan.runs.checkpoints import committed, prune, read_marker
from hpcgan.runs.layout import RunPaths


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (disk full, quota, permissions); the ones before are intact."""


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write and commit step `step`, then prune: of the committed checkpoints at or below `step`,
    those older than the newest `keep` (at least 2) intact ones go. Never touches one above `step`.

    Raises CheckpointWriteError (one line naming the file) when the write fails; the temp file is
    removed and every earlier checkpoint stays as it was."""
    path = RunPaths(run_dir).checkpoint(step)
    _write_committed(path, state, {"step": step})
    prune(run_dir, step, max(2, keep))
    return path


def save_best(run_dir: Path, step: int, state: dict[str, Any], fid: float) -> Path:
    """The checkpoint with the lowest FID so far, `best.pt`, outside the rotation of the newest k.
    Raises CheckpointWriteError as save_checkpoint does (the previous best.pt is kept)."""
    path = RunPaths(run_dir).best_checkpoint
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

