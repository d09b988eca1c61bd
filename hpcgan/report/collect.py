"""A run's own files (config.json, job.json, metrics.jsonl, eval.jsonl, events.jsonl, samples/)
read into one RunData. Nothing here imports torch or asks the scheduler: a report is about what
the run wrote."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcgan.runs.layout import RunPaths
from hpcgan.runs.logs import read_jsonl
from hpcgan.runs.records import read_job_record, read_json

SAMPLE_NAME = re.compile(r"^step-(\d+)\.png$")


@dataclass(frozen=True)
class FidPoint:
    step: int
    fid: float
    kid: float | None
    kid_std: float | None
    source: str  # "training" (metrics.jsonl, eval.every) or "eval" (eval.jsonl, `hpcgan eval`)
    extractor: str
    n_fake: int | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # precision, recall, IS, MS-SSIM ...

    @property
    def series(self) -> str:
        """FIDs compare only within one series: same source, extractor, sample count and real split."""
        where = "during training" if self.source == "training" else "hpcgan eval"
        n = f", n={self.n_fake}" if self.n_fake else ""
        split = self.extra.get("split")
        against = f", against {split}" if split and split != "train" else ""
        return f"{where} ({self.extractor}{n}{against})"


@dataclass(frozen=True)
class Marker:
    """Something that happened to the run at a step, drawn on the curves and the sample timeline."""

    step: int
    kind: str  # stopped | restart | diverged
    label: str
    since: int | None = None  # diverged: the step it rolled back to


@dataclass
class RunData:
    path: Path
    name: str
    config: dict[str, Any]
    job: dict[str, Any]
    train: list[dict[str, Any]]  # one row per logged step, sorted; a step logged again wins
    fids: list[FidPoint]  # sorted by step
    events: list[dict[str, Any]]  # in file order
    samples: list[tuple[int, Path]]  # (step, grid), sorted
    updated: float | None  # newest modification time of the run's logs

    @property
    def total_steps(self) -> int | None:
        steps = self.config.get("train", {}).get("steps")
        return int(steps) if isinstance(steps, int | float) else None

    @property
    def last_step(self) -> int:
        steps = [r["step"] for r in self.train] + [s for s, _ in self.samples] + [p.step for p in self.fids]
        steps += [int(e["step"]) for e in self.events if isinstance(e.get("step"), int | float)]
        return max(steps, default=0)

    @property
    def starts(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "start"]

    @property
    def requeues(self) -> int:
        """SLURM's restart count, as `hpcgan status` shows it."""
        return max([int(e.get("restart_count") or 0) for e in self.starts] + [0])

    @property
    def state(self) -> str:
        last = self.events[-1].get("event") if self.events else None
        if last == "completed":
            return "completed"
        if last == "stopped":
            return "stopped"
        if last in ("start", "diverged"):
            return "running"  # or killed without a word (SIGKILL, node failure): the logs can't tell
        return "pending" if self.job.get("job_id") else "not started"

    @property
    def images_per_s(self) -> float | None:
        rates = [r["images_per_s"] for r in self.train if number(r.get("images_per_s")) is not None]
        return rates[-1] if rates else None

    @property
    def final_fid(self) -> FidPoint | None:
        """The FID at the latest step; at equal steps `hpcgan eval` (usually more samples) wins."""
        return max(self.fids, key=lambda p: (p.step, p.source == "eval", p.n_fake or 0), default=None)

    @property
    def best_fid(self) -> FidPoint | None:
        """The lowest FID of the final one's series (other series don't compare)."""
        final = self.final_fid
        return min((p for p in self.fids if p.series == final.series), key=lambda p: p.fid) if final else None

    @property
    def latest_diversity(self) -> FidPoint | None:
        """The latest evaluation with diversity measures (recall), as final_fid picks among equals."""
        measured = [p for p in self.fids if "recall" in p.extra]
        return max(measured, key=lambda p: (p.step, p.source == "eval", p.n_fake or 0), default=None)

    def fid_series(self) -> dict[str, list[FidPoint]]:
        out: dict[str, list[FidPoint]] = {}
        for p in self.fids:
            out.setdefault(p.series, []).append(p)
        return out

    @property
    def markers(self) -> list[Marker]:
        """Stops (preemption, time limit, scancel), restarts of the job and divergences."""
        out = []
        for i, e in enumerate(self.events):
            kind, step = e.get("event"), int(e.get("step") or 0)
            if kind == "stopped":
                out.append(Marker(step, "stopped", f"stopped by {e.get('signal') or 'a signal'}"))
            elif kind == "start" and i > 0:
                count = int(e.get("restart_count") or 0)
                out.append(Marker(step, "restart", f"requeued (restart {count})" if count else "resumed"))
            elif kind == "diverged":
                failed = int(e.get("failed_at") or step)
                out.append(Marker(failed, "diverged", f"diverged, rolled back to {step}", since=step))
        return out


def read_run(path: Path, name: str | None = None) -> RunData:
    train_rows: dict[int, dict[str, Any]] = {}
    fids: dict[tuple, FidPoint] = {}
    paths = RunPaths(path)
    for row in read_jsonl(paths.metrics):
        if not isinstance(row.get("step"), int):
            continue
        if "loss_d" in row:
            train_rows[row["step"]] = row  # a rollback or a resume logs a step again: the last one counts
        elif number(row.get("fid")) is not None:
            point = _fid_point(row, "training")
            fids[(point.series, point.step)] = point
    for row in read_jsonl(paths.eval_log):
        if isinstance(row.get("step"), int) and number(row.get("fid")) is not None:
            point = _fid_point(row, "eval")
            fids[(point.series, point.step)] = point
    samples = []
    for grid in paths.samples.glob("step-*.png"):
        match = SAMPLE_NAME.match(grid.name)
        if match:
            samples.append((int(match.group(1)), grid))
    logs = [paths.metrics, paths.eval_log, paths.events] + [g for _, g in samples]
    times = [p.stat().st_mtime for p in logs if p.is_file()]
    return RunData(
        path=path,
        name=name or path.resolve().name,
        config=read_json(paths.config),
        job=read_job_record(path),
        train=[train_rows[s] for s in sorted(train_rows)],
        fids=sorted(fids.values(), key=lambda p: (p.step, p.series)),
        events=read_jsonl(paths.events),
        samples=sorted(samples),
        updated=max(times, default=None),
    )


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"g_width": 8}} -> {"model.g_width": 8}, the keys `key=value` overrides use."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= flat_config(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def varying_keys(runs: list[RunData]) -> list[str]:
    """The config keys whose values differ between runs: what a sweep varied."""
    flats = [flat_config(r.config) for r in runs if r.config]
    keys = sorted({k for f in flats for k in f})
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


def _fid_point(row: dict[str, Any], source: str) -> FidPoint:
    known = {"step", "fid", "kid", "kid_std", "extractor", "n_fake"}
    return FidPoint(
        step=row["step"], fid=float(row["fid"]), kid=number(row.get("kid")), kid_std=number(row.get("kid_std")),
        source=source, extractor=str(row.get("extractor") or "?"),
        n_fake=int(row["n_fake"]) if isinstance(row.get("n_fake"), int) else None,
        extra={k: v for k, v in row.items() if k not in known},
    )  # fmt: skip


def number(value: Any) -> float | None:
    """A finite number, or None (missing, null, NaN, a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
