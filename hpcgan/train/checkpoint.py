"""Checkpoints that survive a crash at any moment.

A checkpoint is `step-NNNNNNN.pt`, written to a temporary file, fsynced and renamed, then committed
by `step-NNNNNNN.json` (its sha256 and size) written the same way. Only committed checkpoints whose
bytes match their marker are loaded, with `torch.load(weights_only=True)`: a truncated or corrupt
file is skipped with a warning and the previous one is used.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from hpcgan.atomic import atomic_open, sha256_file, write_json
from hpcgan.errors import UserError


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step-{step:07d}.pt"


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    path = checkpoint_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)
    write_json(
        path.with_suffix(".json"),
        {"step": step, "file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)},
    )
    _prune(path.parent, max(2, keep))
    return path


def save_best(run_dir: Path, step: int, state: dict[str, Any], fid: float) -> Path:
    """The checkpoint with the lowest FID so far, `best.pt`, outside the rotation of the newest k."""
    path = checkpoint_dir(run_dir) / "best.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)
    marker = {"step": step, "fid": fid, "file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    write_json(path.with_suffix(".json"), marker)
    return path


def committed(run_dir: Path) -> list[Path]:
    """Checkpoint files that have a commit marker, newest first."""
    folder = checkpoint_dir(run_dir)
    markers = sorted(folder.glob("step-*.json"), reverse=True) if folder.is_dir() else []
    return [m.with_suffix(".pt") for m in markers]


def _prune(folder: Path, keep: int) -> None:
    for old in committed(folder.parent)[keep:]:
        old.with_suffix(".json").unlink(missing_ok=True)  # uncommit first, then delete
        old.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint, verifying it against its marker when it has one."""
    if not path.is_file():
        raise UserError(f"--resume {path}: no such checkpoint")
    marker = path.with_suffix(".json")
    if marker.is_file():
        expected = json.loads(marker.read_text())
        if path.stat().st_size != expected["bytes"] or sha256_file(path) != expected["sha256"]:
            raise UserError(f"{path}: does not match its commit marker {marker.name} (truncated or corrupt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged pickles
        raise UserError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None


def latest_valid(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest committed checkpoint that loads; damaged ones are skipped with a warning."""
    for path in committed(run_dir):
        try:
            return path, load_checkpoint(path)
        except UserError as exc:
            warnings.warn(f"skipping checkpoint: {exc}", stacklevel=2)
    return None
