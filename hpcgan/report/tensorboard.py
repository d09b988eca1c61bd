"""`hpcgan report --tensorboard`: a run's metrics as TensorBoard scalars, for people who live in
TensorBoard (`tensorboard --logdir SWEEP` then shows every run of a sweep)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from hpcgan.errors import UserError
from hpcgan.report.collect import RunData, number
from hpcgan.runs.scalar_tags import TRAIN_SCALARS, series_tag, train_tag

INSTALL = "pip install 'hpcgan[tensorboard]'"


def check_available() -> None:
    """Before any report is written: a missing package is one line, not a half-done sweep."""
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError(f"--tensorboard needs the tensorboard package: {INSTALL}")


def write_scalars(run: RunData, logdir: Path) -> Path | None:
    """Rewrites `logdir` whole (a second report must not add a second copy of every point):
    written beside it, then swapped in. None when the run has logged nothing yet."""
    check_available()
    if not run.train and not run.fids:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise UserError(f"--tensorboard: {exc}; {INSTALL}") from None
    logdir.parent.mkdir(parents=True, exist_ok=True)
    fresh = logdir.with_name(f".{logdir.name}.new-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    writer = SummaryWriter(log_dir=str(fresh))
    try:
        for row in run.train:
            for key in TRAIN_SCALARS:
                value = number(row.get(key))
                if value is not None:
                    writer.add_scalar(train_tag(key), value, row["step"])
        for point in run.fids:
            tag = series_tag(point.source, point.extractor, point.n_fake)
            writer.add_scalar(f"fid/{tag}", point.fid, point.step)
            if point.kid is not None:
                writer.add_scalar(f"kid/{tag}", point.kid, point.step)
        for marker in run.markers:  # a scalar per kind of event, so they show on TensorBoard's step axis
            writer.add_scalar(f"events/{marker.kind}", 1.0, marker.step)
    finally:
        writer.close()
    old = logdir.with_name(f".{logdir.name}.old-{os.getpid()}")
    if logdir.exists():
        os.replace(logdir, old)
    os.replace(fresh, logdir)
    shutil.rmtree(old, ignore_errors=True)
    return logdir
