"""The report's figures as PNG bytes: a run's losses, D accuracy, FID/KID and images/s, with its
stops, requeues and divergences marked; a sweep's curves overlaid on shared axes.

Figures are built with matplotlib's object API on the Agg canvas: no pyplot, so no display, no
global figure state, and nothing to close.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hpcgan.report.collect import FidPoint, Marker, RunData, number

DPI = 150  # sharp on high-density screens; the page scales the images to their column
STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": "#374151",
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.7,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "legend.frameon": False,
    "legend.fontsize": 7.5,
    "lines.linewidth": 1.4,
}
G_COLOR, D_COLOR = "#2563eb", "#dc2626"
MARKER_STYLE = {  # kind -> (color, line style, legend label)
    "stopped": ("#d97706", (0, (4, 2)), "stopped (preempted, time limit, cancelled)"),
    "restart": ("#7c3aed", (0, (1, 1.5)), "restarted (requeue or resume)"),
    "diverged": ("#dc2626", "-", "diverged (rolled back)"),
}


@contextmanager
def _figure(width: float = 6.0, height: float = 2.9, ncols: int = 1) -> Iterator[tuple[Figure, list[Axes]]]:
    with mpl.rc_context(STYLE):  # rcParams are read while drawing too, so the context spans both
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = list(np.atleast_1d(fig.subplots(1, ncols)))
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("step")
        yield fig, axes


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r["step"], number(r.get(key))) for r in rows]
    pairs = [(s, v) for s, v in pairs if v is not None]
    return np.array([s for s, _ in pairs], float), np.array([v for _, v in pairs], float)


def smooth(values: np.ndarray) -> np.ndarray:
    """A centred moving average over ~1/30 of the curve (GAN losses are noisy step to step)."""
    window = max(len(values) // 30, 1)
    if window < 3:
        return values
    kernel = np.ones(window)
    return np.convolve(values, kernel, "same") / np.convolve(np.ones_like(values), kernel, "same")


def _plot(ax: Axes, x: np.ndarray, y: np.ndarray, color: str, label: str) -> None:
    """Raw values faint behind their smoothed curve when there are many points, else just the line."""
    if len(x) > 60:
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(x, smooth(y), color=color, label=label)
    else:
        ax.plot(x, y, color=color, label=label, marker="." if len(x) < 25 else None, markersize=4)


def mark_events(ax: Axes, markers: Sequence[Marker], legend: bool = False) -> None:
    """Vertical lines at stops and restarts; a divergence also shades the steps it threw away.
    `legend`: name the kinds in the legend (once per page is enough; the page explains them)."""
    seen = set()
    for m in markers:
        color, style, label = MARKER_STYLE[m.kind]
        if m.kind == "diverged" and m.since is not None and m.since < m.step:
            ax.axvspan(m.since, m.step, color=color, alpha=0.08, linewidth=0)
        named = legend and m.kind not in seen
        ax.axvline(m.step, color=color, linestyle=style, linewidth=1.1, label=label if named else None)
        seen.add(m.kind)


def _legend(fig: Figure, ax: Axes, ncols: int = 2) -> None:
    """Below the axes, never over the curves."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(handles)))


def losses(run: RunData) -> bytes | None:
    x_d, y_d = _series(run.train, "loss_d")
    x_g, y_g = _series(run.train, "loss_g")
    if not len(x_d) and not len(x_g):
        return None
    with _figure() as (fig, (ax,)):
        _plot(ax, x_d, y_d, D_COLOR, "D loss")
        _plot(ax, x_g, y_g, G_COLOR, "G loss")
        mark_events(ax, run.markers, legend=True)
        ax.set_title("Losses")
        _legend(fig, ax, ncols=2 if not run.markers else 3)
        return png(fig)


def accuracy(run: RunData) -> bytes | None:
    x_r, y_r = _series(run.train, "d_real_acc")
    x_f, y_f = _series(run.train, "d_fake_acc")
    if not len(x_r) and not len(x_f):
        return None
    with _figure() as (fig, (ax,)):
        ax.axhline(0.5, color="#9ca3af", linewidth=0.8, linestyle=(0, (2, 2)))
        _plot(ax, x_r, y_r, "#059669", "D on real images")
        _plot(ax, x_f, y_f, "#9333ea", "D on fake images")
        mark_events(ax, run.markers)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title("Discriminator accuracy (0.5: can't tell)")
        _legend(fig, ax)
        return png(fig)


def images_per_s(run: RunData) -> bytes | None:
    x, y = _series(run.train, "images_per_s")
    if not len(x):
        return None
    with _figure() as (fig, (ax,)):
        _plot(ax, x, y, "#0f766e", "images/s (all ranks)")
        mark_events(ax, run.markers)
        ax.set_ylim(bottom=0)
        ax.set_title("Throughput: images/s, all ranks")
        return png(fig)


def augmentation(run: RunData) -> bytes | None:
    """ADA's probability p, and the overfitting heuristic r_t it follows, against its target."""
    x, y = _series(run.train, "ada_p")
    if not len(x):
        return None
    x_r, y_r = _series(run.train, "ada_rt")
    target = number((run.config.get("train") or {}).get("ada_target"))
    with _figure() as (fig, (ax,)):
        _plot(ax, x, y, "#0f766e", "p (augmentation probability)")
        _plot(ax, x_r, y_r, "#9ca3af", "r_t (D's certainty on real images)")
        if target is not None:
            ax.axhline(target, color="#6b7280", linewidth=0.8, linestyle=(0, (2, 2)), label=f"target {target:g}")
        mark_events(ax, run.markers)
        ax.set_ylim(-1.03, 1.03)
        ax.set_title("Adaptive augmentation: p follows D's overfitting")
        _legend(fig, ax, ncols=3)
        return png(fig)


def fid_kid(run: RunData) -> bytes | None:
    series = run.fid_series()
    if not series:
        return None
    palette = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#be123c"]
    with _figure(width=6.0, height=2.9, ncols=2) as (fig, (ax_fid, ax_kid)):
        for i, (label, points) in enumerate(series.items()):
            color = palette[i % len(palette)]
            steps = [p.step for p in points]
            ax_fid.plot(steps, [p.fid for p in points], color=color, marker="o", markersize=3.5, label=label)
            kids = [(p.step, p.kid, p.kid_std or 0.0) for p in points if p.kid is not None]
            if kids:
                s, k, e = (np.array(v, float) for v in zip(*kids, strict=True))
                ax_kid.plot(s, k, color=color, marker="o", markersize=3.5)
                ax_kid.fill_between(s, k - e, k + e, color=color, alpha=0.12, linewidth=0)
        for ax in (ax_fid, ax_kid):
            mark_events(ax, run.markers)
        ax_fid.set_title("FID (lower is better)")
        ax_kid.set_title("KID ± spread over subsets")
        _legend(fig, ax_fid, ncols=1)  # series names are long
        return png(fig)


# -- sweeps ---------------------------------------------------------------------------------------


def run_colors(n: int) -> list[str]:
    """One colour per run, the same in the table and every overlaid figure."""
    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    if n <= 20:
        return [mpl.colors.to_hex(cmap(i)) for i in range(n)]
    return [mpl.colors.to_hex(mpl.colormaps["turbo"](i / max(n - 1, 1))) for i in range(n)]


def _short(name: str, width: int = 36) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _overlay(runs: Sequence[RunData], colors: Sequence[str], panels: Sequence[tuple[str, Callable]]) -> bytes | None:
    """One panel per (title, run -> (x, y)), a line per run, a legend of runs on the right."""
    data = [[fn(run) for run in runs] for _, fn in panels]
    if not any(len(x) for panel in data for x, _ in panel):
        return None
    with _figure(width=7.6, height=3.0, ncols=len(panels)) as (fig, axes):
        for ax, (panel_title, _), panel in zip(axes, panels, data, strict=True):
            for run, color, (x, y) in zip(runs, colors, panel, strict=True):
                if len(x):
                    ax.plot(x, smooth(y) if len(x) > 60 else y, color=color, label=_short(run.name),
                            marker="o" if len(x) < 12 else None, markersize=3)  # fmt: skip
            ax.set_title(panel_title)
        handles, labels = axes[0].get_legend_handles_labels()
        if len(runs) <= 30:  # beyond that a legend is noise; the table's colour swatches still say who is who
            fig.legend(handles, labels, loc="outside right upper", ncols=1 if len(runs) <= 15 else 2)
        return png(fig)


def sweep_losses(runs: Sequence[RunData], colors: Sequence[str]) -> bytes | None:
    return _overlay(runs, colors, [
        ("D loss, every run", lambda r: _series(r.train, "loss_d")),
        ("G loss, every run", lambda r: _series(r.train, "loss_g")),
    ])  # fmt: skip


def _final_series(run: RunData, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The run's points in the series of its final FID (other series don't compare)."""
    final = run.final_fid
    points: list[FidPoint] = run.fid_series().get(final.series, []) if final else []
    pairs = [(p.step, getattr(p, key)) for p in points if getattr(p, key) is not None]
    return np.array([s for s, _ in pairs], float), np.array([v for _, v in pairs], float)


def sweep_fid(runs: Sequence[RunData], colors: Sequence[str]) -> bytes | None:
    return _overlay(runs, colors, [
        ("FID, every run (lower is better)", lambda r: _final_series(r, "fid")),
        ("KID, every run", lambda r: _final_series(r, "kid")),
    ])  # fmt: skip
