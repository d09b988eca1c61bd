"""The samples section of a run's page: the timeline of grids with the run's events between them,
the latest grid beside a grid of real training images, and captions true to the run's config.

How the trainer draws a grid (hpcgan/train, save_samples / SampleGrids): the same 64 fixed latents
every time, by the EMA generator when train.ema is non-zero, else by G itself (train.ema_kimg only
changes the EMA's decay; with train.ema=0 there is no EMA generator at all). A conditional run
gives column c of the grid class c mod K.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpcgan.report.assets import RunAssets
from hpcgan.report.collect import RunData
from hpcgan.report.dataset import DataSet, RealImages
from hpcgan.report.parts import Grid
from hpcgan.report.text import Rich, code, listing, plural, rich

LATEST_DISPLAY_PX = 520  # CSS width of the large grids (img.large)
DEFAULT_EMA = 0.999  # TrainConfig.ema: a config without the key ran with it


@dataclass(frozen=True)
class StripItem:
    """A grid on the timeline, or an event between grids (`kind` stopped | restart | diverged)."""

    step: int
    when: str  # "step 1,200"
    grid: Grid | None = None
    kind: str = ""
    label: str = ""


@dataclass(frozen=True)
class Large:
    title: str
    grid: Grid | None
    caption: Rich
    pixelated: bool = False
    missing: str = ""  # one line when the grid can't be shown


@dataclass
class SamplesView:
    count: str  # "8 grids", "16 of 40 grids, evenly spaced"
    strip: list[StripItem]
    empty: Rich = ()
    large: list[Large] = field(default_factory=list)  # the latest samples, the real images
    problems: list[str] = field(default_factory=list)


def has_ema(config: dict[str, Any]) -> bool:
    """Whether the run keeps an EMA generator, which then draws its grids."""
    return bool((config.get("train") or {}).get("ema", DEFAULT_EMA))


def is_conditional(config: dict[str, Any]) -> bool:
    return (config.get("model") or {}).get("conditional", "none") not in ("none", "", None)


def samples_caption(config: dict[str, Any], classes: list[str] | None, columns: int) -> Rich:
    """Which network drew the grids, and where the classes are (conditional runs only)."""
    if has_ema(config):
        who = rich("The same fixed latent vectors at every grid, drawn by the EMA generator (the moving average "
                   "of G's weights that evaluation and export use). ")  # fmt: skip
    else:
        who = rich("The same fixed latent vectors at every grid, drawn by G itself (", code("train.ema=0"),
                   ": this run keeps no EMA generator). ")  # fmt: skip
    return who + _classes(config, classes, columns) + rich("Click a grid for full size.")


def _classes(config: dict[str, Any], classes: list[str] | None, columns: int) -> Rich:
    if not is_conditional(config):
        return ()
    if not classes:
        return rich("Classes in fixed columns (column c has class c mod the number of classes); the class names "
                    "are in the shard set, which cannot be read here. ")  # fmt: skip
    k = len(classes)
    if k == 1:
        return rich(f"Every image is class {classes[0]}. ")
    where = []
    for c, name in enumerate(classes[:columns]):
        held = [str(j) for j in range(c + 1, columns + 1, k)]
        where.append(f"{name} in {'columns' if len(held) > 1 else 'column'} {listing(held)}")
    if k > columns:
        where.append(f"{k - columns} more classes are not drawn")
    return rich(f"Classes in fixed columns: {'; '.join(where)}. ")


def real_caption(config: dict[str, Any], data: DataSet, real: RealImages) -> Rich:
    n, split = len(real.pixels), data.train_split
    if real.by_class:
        text = (f"{n} images of the {split} split, the first of each class from {real.shard} on, placed like the "
                "samples (the same class in the same places).")  # fmt: skip
    elif is_conditional(config):
        text = (f"The first {n} readable images of the {split} split, from {real.shard} on, in shard order (the "
                "first shards lack enough of some class to match the samples' layout).")  # fmt: skip
    else:
        text = (f"The first {n} readable images of the {split} split, from {real.shard} on, in shard order (the "
                "shards are shuffled: a fair draw).")  # fmt: skip
    damaged = f" {plural(real.unreadable, 'damaged image')} skipped." if real.unreadable else ""
    broken = f" Then: {real.problem}." if real.problem else ""
    return rich(text + damaged + broken)


def samples_view(run: RunData, assets: RunAssets) -> SamplesView:
    problems = [f"{name}: unreadable, left out" for name in assets.unreadable]
    real = _real(run, assets)
    if not assets.grids:
        state = "has none that can be read" if assets.unreadable else "is empty"
        empty = rich("No sample grids yet (RUN/samples/ ", state, "; grids are saved every ",
                     code("train.sample_every"), " steps and at the end).")  # fmt: skip
        return SamplesView("", [], empty, [real], problems)
    strip = [StripItem(g.step, f"step {g.step:,}", grid=g) for g in assets.grids]
    # The run's events between the grids, where they happened.
    strip += [StripItem(m.step, f"step {m.step:,}", kind=m.kind, label=m.label) for m in run.markers]
    strip.sort(key=lambda item: (item.step, item.grid is None))
    total, shown = assets.grids_total, len(assets.grids)
    count = f"{shown} of {total} grids, evenly spaced" if total > shown else plural(total, "grid")
    large = [real]
    if (latest := assets.latest) is not None:
        caption = samples_caption(run.config, assets.data.classes if assets.data else None, assets.columns)
        large.insert(0, Large(f"Latest samples, step {latest.step:,}", latest, caption,
                              0 < latest.width < LATEST_DISPLAY_PX))  # fmt: skip
    return SamplesView(count, strip, (), large, problems)


def _real(run: RunData, assets: RunAssets) -> Large:
    grid, images, data = assets.real, assets.real_images, assets.data
    if grid is not None and images is not None and data is not None:
        return Large("Real training images", grid, real_caption(run.config, data, images),
                     0 < grid.width < LATEST_DISPLAY_PX)  # fmt: skip
    missing = assets.data_problem or (images.problem if images else None) or "No real images to show."
    return Large("Real training images", None, (), missing=missing)
