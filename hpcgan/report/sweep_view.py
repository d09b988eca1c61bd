"""Everything a sweep's page shows, laid out by templates/sweep.html: stat cards, a sortable table
of the runs (the config keys the sweep varied, state, steps, FIDs, speed) and overlaid curves."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hpcgan.report.collect import FidPoint, RunData, flat_config, number, varying_keys
from hpcgan.report.parts import Badge, Header, Stat, state_badge
from hpcgan.report.text import MISSING, Rich, bold, fid, fmt, rich, when

MAX_KEY_COLUMNS = 4  # more varied keys than this share one "settings" column


@dataclass(frozen=True)
class SweepRow:
    """What build.py made for one run of the sweep."""

    run: RunData
    color: str
    report: str  # href of the run's page
    thumb: str | None  # href of its last grid's small copy


@dataclass(frozen=True)
class Column:
    label: str
    sort: str = ""  # "num" | "text" | "" (not sortable)
    numeric: bool = False
    id: str = ""
    aria: str = ""  # a name for a header without text


@dataclass(frozen=True)
class Cell:
    text: str
    value: str | None = None  # what the header's sort compares; None: no value (sorted last)
    numeric: bool = False
    title: str = ""


@dataclass(frozen=True)
class RowView:
    name: str
    report: str
    thumb: str | None
    color: str
    keys: list[Cell]  # one per varied key (per-column mode)
    settings: list[str]  # "key=value" of every varied key (one-column mode)
    state: Badge
    numbers: list[Cell]


@dataclass(frozen=True)
class SweepView:
    title: str
    header: Header
    stats: list[Stat]
    columns: list[Column]
    settings_column: bool
    rows: list[RowView]
    notes: list[Rich]
    figures: list[tuple[str, str]]  # (href, alt)


NUMBER_COLUMNS = [Column("step", "num", True), Column("final FID", "num", True, "fid"),
                  Column("best FID", "num", True), Column("KID", "num", True), Column("images/s", "num", True),
                  Column("requeues", "num", True)]  # fmt: skip


def sweep_view(name: str, path: str, rows: list[SweepRow], figures: dict[str, str],
               made: float | None = None) -> SweepView:  # fmt: skip
    runs = [r.run for r in rows]
    varying = [k for k in varying_keys(runs) if k != "data" or len({r.config.get("data") for r in runs}) > 1]
    per_column = len(varying) <= MAX_KEY_COLUMNS
    states = Counter(r.state for r in runs)
    finals = [(r.final_fid, r) for r in runs if r.final_fid]
    best = min(finals, key=lambda f: f[0].fid, default=None)
    stats = [
        Stat("runs", str(len(runs)), ", ".join(f"{n} {s}" for s, n in states.most_common())),
        Stat("best final FID", fid(best[0].fid) if best else MISSING, best[1].name if best else "none yet"),
        Stat("requeues", str(sum(r.requeues for r in runs)), "all runs"),
        Stat("steps logged", f"{sum(r.last_step for r in runs):,}", "all runs"),
    ]
    columns = [Column("", aria="colour"), Column("samples"), Column("run", "text")]
    if per_column:
        for key in varying:
            numeric = all(number(flat_config(r.config).get(key)) is not None for r in runs if r.config)
            columns.append(Column(key, "num" if numeric else "text", numeric))
    elif varying:
        columns.append(Column("settings"))
    columns += [Column("state", "text"), *NUMBER_COLUMNS]
    series = {f[0].series for f in finals}
    notes = [rich("Click a column header to sort (again to reverse); runs without a value stay last. Final FID: at "
                  "the latest evaluated step; best FID: the lowest of the same series.")]  # fmt: skip
    if len(series) > 1:
        notes.append(rich(bold("The final FIDs come from different series"), f" ({'; '.join(sorted(series))}): only "
                          "FIDs of one extractor and sample count compare."))  # fmt: skip
    return SweepView(
        title=f"{name}: hpcgan sweep report",
        header=Header(name, kind="sweep", path=f"{path} · report made {when(made or time.time())}"),
        stats=stats,
        columns=columns,
        settings_column=bool(varying) and not per_column,
        rows=[_row(row, varying, per_column) for row in rows],
        notes=notes,
        figures=[(href, f"{key} of every run") for key, href in figures.items()],
    )


def _row(row: SweepRow, varying: list[str], per_column: bool) -> RowView:
    r, flat = row.run, flat_config(row.run.config)
    keys, settings = [], []
    if per_column:
        keys = [Cell(json.dumps(flat[k]), _value(flat[k]), number(flat[k]) is not None) if k in flat
                else Cell(MISSING) for k in varying]  # fmt: skip
    else:
        settings = [f"{k}={json.dumps(flat.get(k))}" for k in varying]
    final, best = r.final_fid, r.best_fid
    total = f" / {r.total_steps:,}" if r.total_steps else ""
    numbers = [
        Cell(f"{r.last_step:,}{total}", str(r.last_step), True),
        Cell(fid(final.fid if final else None), _value(final.fid if final else None), True, _fid_title(final)),
        Cell(fid(best.fid if best else None), _value(best.fid if best else None), True),
        Cell(fmt(final.kid if final else None, ".4f"), _value(final.kid if final else None), True),
        Cell(fmt(r.images_per_s, ",.0f"), _value(r.images_per_s), True),
        Cell(str(r.requeues), str(r.requeues), True),
    ]
    return RowView(r.name, row.report, row.thumb, row.color, keys, settings, state_badge(r.state), numbers)


def _value(v: Any) -> str | None:
    return None if v is None else str(v)


def _fid_title(p: FidPoint | None) -> str:
    return f"step {p.step}, {p.series}" if p else ""
