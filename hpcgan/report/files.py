"""The run's own files the page links to: config.json, the logs and the checkpoints.

Checkpoint names are the trainer's (RUN/checkpoints/step-N.pt, committed once its marker
step-N.json exists; best.pt, the lowest FID). Only listed and stat'ed, never opened: a checkpoint
is torch's pickle, and the report does not load torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpcgan.report.text import size
from hpcgan.runs import layout
from hpcgan.runs.checkpoints import step_of

RUN_FILES = (  # name, what it holds
    (layout.CONFIG, "the resolved configuration"),
    (layout.JOB_RECORD, "the scheduler job (hpcgan submit)"),
    (layout.METRICS, "one record per logged step, and training-time FIDs"),
    (layout.EVENTS, "starts, stops, divergences, completion"),
    (layout.EVAL_LOG, "hpcgan eval results"),
)


@dataclass(frozen=True)
class RunFile:
    label: str
    path: Path
    detail: str


def run_files(run_dir: Path) -> list[RunFile]:
    out = []
    for name, what in RUN_FILES:
        path = run_dir / name
        if path.is_file():
            out.append(RunFile(name, path, f"{what}; {_size(path)}"))
    return out


def checkpoints(run_dir: Path) -> list[RunFile]:
    """step-N.pt newest first, then best.pt."""
    paths = layout.RunPaths(run_dir)
    folder = paths.checkpoints
    steps = []
    for path in folder.glob("step-*.pt") if folder.is_dir() else []:
        step = step_of(path)
        if step is not None:
            steps.append((step, path))
    out = []
    for step, path in sorted(steps, reverse=True):
        # No marker: still being written, or cut short by a kill (resume skips it).
        state = "committed" if path.with_suffix(".json").is_file() else "no commit marker: incomplete"
        out.append(RunFile(f"step {step:,}", path, f"{_size(path)}, {state}"))
    best = paths.best_checkpoint
    if best.is_file():
        out.append(RunFile("best", best, f"{_size(best)}, the lowest FID so far"))
    return out


def _size(path: Path) -> str:
    try:
        return size(path.stat().st_size)
    except OSError:
        return "size unknown"
