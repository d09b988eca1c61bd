"""A run's checkpoint files without loading them: which are committed, their commit markers,
pruning the old ones, moving an earlier run's aside. Torch-free, so `hpcgan status` can list them;
writing and loading the files is hpcgan/train/checkpoint.py.

A checkpoint `step-N.pt` counts once its commit marker `step-N.json` (step, size, sha256) exists:
the marker is written after the file, so a save killed halfway leaves no marker. Pruning deletes
only checkpoints older than the one just written: a run dir may hold newer files this run did not
write (an earlier run's, or damaged ones), and those are never this run's to delete.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hpcgan.atomic import fsync_dir
from hpcgan.errors import UserError
from hpcgan.runs.layout import RunPaths


def committed(run_dir: Path) -> list[Path]:
    """Checkpoint files that have a commit marker, newest first."""
    folder = RunPaths(run_dir).checkpoints
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


def remove_orphaned_temps(run_dir: Path) -> list[Path]:
    """Delete temp files of saves that were killed (`.step-NNN.pt.*.tmp`, `.best.pt.*.tmp`, markers'),
    which can be tens of MB each. Only call this while holding the run dir (run_hold): another live
    trainer's temp file would look the same."""
    folder = RunPaths(run_dir).checkpoints
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
