"""Writes report folders: RUN/report/ (index.html, figures/*.png, samples/*.png) for a run, and
SWEEP/report/ for a sweep, with each run's own report built too. The views (run_view, sweep_view)
decide what the pages say; render.py writes their HTML.

Images are PNG files beside the page, referenced by relative paths, not data URIs: a sweep page
then stays small however many runs it shows, the browser loads each image once for the sweep and
the run pages, the figures can be dropped into slides or papers as they are, and the folder still
opens offline wherever it is copied (`scp -r RUN/report`). Every file is written atomically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hpcgan.atomic import write_bytes
from hpcgan.errors import UserError
from hpcgan.report import figures, images, render
from hpcgan.report.assets import RunAssets
from hpcgan.report.collect import RunData, read_run
from hpcgan.report.dataset import open_data, read_real
from hpcgan.report.environment import run_environment
from hpcgan.report.files import checkpoints, run_files
from hpcgan.report.parts import Grid, Link
from hpcgan.report.run_view import run_view
from hpcgan.report.samples_view import is_conditional
from hpcgan.report.sweep_view import SweepRow, sweep_view
from hpcgan.runs.layout import find_runs, is_run

REPORT_DIR = "report"
RUN_FIGURES: dict[str, Callable[[RunData], bytes | None]] = {
    "losses": figures.losses,
    "accuracy": figures.accuracy,
    "fid": figures.fid_kid,
    "speed": figures.images_per_s,
    "ada": figures.augmentation,
}


@dataclass(frozen=True)
class Report:
    page: Path  # index.html of the run or the sweep
    tensorboard: Path | None  # what `tensorboard --logdir` should be given, with --tensorboard


# (description, total) -> a context yielding (advance, set_total), as hpcgan.console.progress_bar
Progress = Callable[[str, int], AbstractContextManager[tuple[Callable[[int], None], Any]]]


def make_report(path: Path, out: Path | None = None, *, tensorboard: bool = False, grids: int = 16,
                progress: Progress | None = None) -> Report:  # fmt: skip
    """`hpcgan report PATH`: the page of a run, or of a sweep and each of its runs."""
    if grids < 1:
        raise UserError(f"--grids {grids}: expected at least 1")
    runs = find_sources(path)
    if tensorboard:
        from hpcgan.report.tensorboard import check_available

        check_available()  # before anything is written
    single = is_run(path)
    try:
        if single:
            tb = (out or path) / "tensorboard" if tensorboard else None
            page = build_run_report(path, out, grids=grids, tensorboard_dir=tb).page
        else:
            bar = progress(f"reports of {len(runs)} runs", len(runs)) if progress else nullcontext((None, None))
            with bar as (advance, _):
                page = build_sweep_report(path, runs, out, tensorboard=tensorboard, grids=grids, progress=advance)
    except OSError as exc:  # a write failing half way (disk full, quota, permissions below the folder)
        where = exc.filename or out or path
        raise UserError(f"{where}: cannot write the report ({exc.strerror or exc})") from None
    # TensorBoard finds every run's RUN/tensorboard under a sweep folder.
    logdir = ((out or path) / "tensorboard" if single or out else path) if tensorboard else None
    return Report(page, logdir)


@dataclass(frozen=True)
class RunReport:
    page: Path
    run: RunData
    thumb: Path | None  # the small copy of the last sample grid (the sweep table shows it)


def find_sources(path: Path) -> list[Path]:
    """The run dirs a report of `path` covers: [path] for a run, its runs for a sweep folder."""
    if not path.exists():
        raise UserError(f"{path}: no such directory")
    if not path.is_dir():
        raise UserError(f"{path}: not a directory (expected a run dir or a sweep folder of runs)")
    runs = find_runs(path)
    if not runs:
        raise UserError(f"{path}: not a run or a sweep (a run dir holds config.json or job.json, a sweep folder "
                        "holds run dirs)")  # fmt: skip
    return runs


def build_run_report(
    run_dir: Path, out: Path | None = None, *, name: str | None = None, grids: int = 16,
    tensorboard_dir: Path | None = None, up: tuple[Path, str] | None = None,
) -> RunReport:  # fmt: skip
    """RUN/report/ (or `out`) for one run; `up` = (the sweep's index.html, its name) for a back link."""
    out = out or run_dir / REPORT_DIR
    prepare_out(out, ("figures", "samples"))
    run = read_run(run_dir, name)
    assets = RunAssets(up=Link(up[1], href(out, up[0])) if up else None)
    written: set[Path] = set()

    def put(relative: str, data: bytes) -> str:
        write_bytes(out / relative, data)
        written.add(out / relative)
        return relative

    for key, draw in RUN_FIGURES.items():
        data = draw(run)
        if data is not None:
            assets.figures[key] = put(f"figures/{key}.png", data)
    unreadable: dict[str, None] = {}  # names, in order, once
    for step, grid in images.pick(run.samples, grids):
        scaled = images.scaled_png(grid, images.THUMB_WIDTH)
        if scaled is None:
            unreadable[grid.name] = None
            continue
        assets.grids.append(Grid(step, put(f"samples/{grid.name}", scaled[0]), href(out, grid), scaled[1]))
    assets.grids_total = len(run.samples)
    thumb = None
    resolution = (run.config.get("model") or {}).get("resolution")
    latest_path = None
    if run.samples:
        step, latest_path = run.samples[-1]
        thumb = out / "samples" / latest_path.name if (out / "samples" / latest_path.name) in written else None
        scaled = images.scaled_png(latest_path, images.LARGE_WIDTH)
        if scaled is None:
            unreadable[latest_path.name] = None
        else:
            assets.latest = Grid(step, put("samples/latest.png", scaled[0]), href(out, latest_path), scaled[1])
    assets.unreadable = list(unreadable)
    rows, assets.columns = images.grid_shape(latest_path, resolution if isinstance(resolution, int) else None)
    _real_images(run, assets, rows * assets.columns, put)
    assets.files = [Link(f.label, href(out, f.path), f.detail) for f in run_files(run_dir)]
    assets.checkpoints = [Link(f.label, href(out, f.path), f.detail) for f in checkpoints(run_dir)]
    if tensorboard_dir is not None:
        from hpcgan.report.tensorboard import write_scalars

        logdir = write_scalars(run, tensorboard_dir)
        assets.tensorboard = str(logdir) if logdir else None
    html = render.run_page(run_view(run, run_environment(run), assets, made=time.time()))
    write_bytes(out / "index.html", html.encode())
    _prune(out, written)
    return RunReport(out / "index.html", run, thumb)


def _real_images(run: RunData, assets: RunAssets, n: int, put: Callable[[str, bytes], str]) -> None:
    """A grid of the run's real training images, as many as a sample grid holds (samples/real.png)."""
    assets.data, assets.data_problem = open_data(run.config)
    if assets.data is None:
        return
    assets.real_images = read_real(assets.data, n, is_conditional(run.config))
    if assets.real_images.pixels:
        grid = images.compose(assets.real_images.pixels, assets.columns)
        # The "full size" copy is capped: 64 images of a 1024 px set would be an 8208 px, 60 MB PNG.
        full = put("samples/real-full.png", images.scaled(grid, 2 * images.LARGE_WIDTH)[0])
        small, width = images.scaled(grid, images.LARGE_WIDTH)
        assets.real = Grid(0, put("samples/real.png", small), full, width)


def build_sweep_report(
    root: Path, runs: list[Path], out: Path | None = None, *, tensorboard: bool = False, grids: int = 16,
    progress: Callable[[int], None] | None = None,
) -> Path:  # fmt: skip
    """SWEEP/report/index.html: the table and overlaid curves; each run's page in RUN/report/, or
    under OUT/runs/ when `out` is given (the runs may not be ours to write into)."""
    target = out or root / REPORT_DIR
    prepare_out(target, ("figures",))
    name = root.resolve().name
    colors = figures.run_colors(len(runs))
    rows = []
    for run_dir, color in zip(runs, colors, strict=True):
        rel = run_dir.relative_to(root)
        run_out = target / "runs" / rel if out else None
        tb = ((target / "tensorboard" / rel) if out else run_dir / "tensorboard") if tensorboard else None
        report = build_run_report(run_dir, run_out, name=str(rel), grids=grids, tensorboard_dir=tb,
                                  up=(target / "index.html", name))  # fmt: skip
        thumb = href(target, report.thumb) if report.thumb else None
        rows.append(SweepRow(report.run, color, href(target, report.page), thumb))
        if progress:
            progress(1)
    written: set[Path] = set()
    hrefs = {}
    for key, draw in (("losses", figures.sweep_losses), ("fid", figures.sweep_fid)):
        data = draw([r.run for r in rows], colors)
        if data is not None:
            write_bytes(target / "figures" / f"{key}.png", data)
            written.add(target / "figures" / f"{key}.png")
            hrefs[key] = f"figures/{key}.png"
    html = render.sweep_page(sweep_view(name, str(root.resolve()), rows, hrefs, made=time.time()))
    write_bytes(target / "index.html", html.encode())
    _prune(target, written)
    return target / "index.html"


REPORT_MARKER = ".hpcgan-report"  # marks a folder as ours to prune


def prepare_out(out: Path, subfolders: tuple[str, ...]) -> None:
    """The report folder exists and is writable, and is not a run dir itself (we prune our old
    images in it, and RUN/samples holds the run's own grids)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: not a folder; choose one for the report with --out")
    if out.is_dir() and is_run(out):
        raise UserError(f"--out {out}: that is a run dir; give the report a folder of its own")
    if out.is_dir() and any(out.iterdir()) and not (out / REPORT_MARKER).is_file():
        # We prune old images in a report folder: never in a folder of someone else's files.
        raise UserError(f"--out {out}: not empty and not an hpcgan report folder; choose a new or empty one")
    try:
        for folder in (out, *(out / s for s in subfolders)):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot write the report there ({exc.strerror or exc}); choose another with --out") \
            from None  # fmt: skip
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"{out}: not writable; choose another folder with --out")
    write_bytes(out / REPORT_MARKER, b"written by hpcgan report; it may replace the images in this folder\n")


def href(page_dir: Path, target: Path) -> str:
    """`target` relative to a page in `page_dir`, as a URL path (run names hold '=', '#', ...)."""
    rel = os.path.relpath(target.resolve(), page_dir.resolve())
    return quote(rel.replace(os.sep, "/"))


def _prune(out: Path, written: set[Path]) -> None:
    """Images an earlier report wrote that this one no longer shows (the timeline's spacing moves
    as a run goes on). Only our own names in our own subfolders."""
    for pattern in ("figures/*.png", "samples/step-*.png", "samples/latest.png", "samples/real*.png"):
        for path in out.glob(pattern):
            if path not in written:
                path.unlink(missing_ok=True)
