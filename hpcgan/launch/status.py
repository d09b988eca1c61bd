"""`hpcgan status`: one row per run under a runs or sweep directory, from the run's own files
(config.json, metrics.jsonl, events.jsonl, checkpoints/, job.json) and SLURM's accounting."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hpcgan.eval.collapse import diversity_verdict
from hpcgan.launch import slurm_info
from hpcgan.runs.checkpoints import committed
from hpcgan.runs.layout import RunPaths, find_runs
from hpcgan.runs.logs import read_jsonl
from hpcgan.runs.records import read_job_record, read_json

FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


@dataclass
class RunStatus:
    name: str
    job_id: str | None
    state: str
    step: int
    total: int
    images_per_s: float | None
    checkpoint_age_s: float | None
    fid: float | None
    requeues: int
    diversity: str | None = None  # the latest evaluation's verdict: ok | low | collapsed (hpcgan/eval/collapse.py)

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES


def collect(root: Path) -> list[RunStatus]:
    runs = find_runs(root)
    records = {run: read_job_record(run) for run in runs}
    # Only SLURM's ids: a local executor's job id is a pid that sacct might know as another job.
    ids = [str(r["job_id"]) for r in records.values() if r.get("job_id") and r.get("cluster") == "slurm"]
    states = slurm_info.job_states(ids) if ids and slurm_info.available() else {}
    rows = []
    for run in runs:
        job = records[run].get("job_id")
        paths = RunPaths(run)
        config = read_json(paths.config)
        logged = read_jsonl(paths.metrics)
        metrics = [m for m in logged if "loss_d" in m]
        events = read_jsonl(paths.events)
        evals = [m for m in logged + read_jsonl(paths.eval_log) if "fid" in m]
        latest = max(evals, key=lambda m: m["step"], default=None)
        checkpoints = committed(run)
        if events and events[-1].get("event") == "completed":
            state = "COMPLETED"
        else:
            state = states.get(str(job)) if job and records[run].get("cluster") == "slurm" else None
            if state is None and events:
                state = "RUNNING" if events[-1].get("event") == "start" else "STOPPED"
            state = state or ("PENDING" if job else "NEW")
        rows.append(
            RunStatus(
                name=str(run.relative_to(root)) if run != Path(root) else run.name,
                job_id=str(job) if job else None,
                state=state,
                step=max([m["step"] for m in metrics] + [e.get("step", 0) for e in events] + [0]),
                total=int(config.get("train", {}).get("steps", 0)),
                images_per_s=metrics[-1].get("images_per_s") if metrics else None,
                checkpoint_age_s=time.time() - checkpoints[0].stat().st_mtime if checkpoints else None,
                fid=latest["fid"] if latest else None,
                requeues=max([int(e.get("restart_count", 0)) for e in events if e.get("event") == "start"] + [0]),
                diversity=diversity_verdict(latest)[0] if latest else None,
            )
        )
    return rows

