"""Submit training runs through submitit: one multi-node job, or a sweep as one SLURM array.

Everything that can be wrong is checked before anything is submitted (the partition exists and is
big enough, the data is a shard set, the preset exists, the run dir is writable and not held by a
live job), so a mistake costs one line, not a queue wait.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit

from hpcgan.atomic import write_json
from hpcgan.data.index import ShardSet
from hpcgan.errors import UserError
from hpcgan.launch import slurm_info
from hpcgan.launch.job import TrainJob
from hpcgan.launch.sweep import load_sweep
from hpcgan.train.config import RunConfig, apply_overrides, check, networks_for
from hpcgan.train.presets import preset
from hpcgan.train.run_hold import check_not_held

JOB_RECORD = "job.json"  # in each run dir: the job id and where its logs are


@dataclass
class SubmitOptions:
    gan: str | None = None
    data: str | None = None
    run_dir: Path | None = None  # default runs/<name or gan>
    name: str | None = None
    overrides: list[str] = field(default_factory=list)
    sweep: Path | None = None
    nodes: int = 1
    tasks_per_node: int = 1  # one task per GPU (--gpus-per-node sets both on GPU nodes)
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    threads: int | None = None  # torch threads per rank (OMP_NUM_THREADS); default: cpus_per_task
    mem: str | None = None  # e.g. 32G
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    time_min: int = 60
    signal_delay_s: int = 90
    max_timeouts: int = 1000  # requeues after a time limit before giving up ("without limit")
    array_parallelism: int = 16
    cluster: str = "auto"  # slurm | local | auto
    dry_run: bool = False


@dataclass
class PlannedRun:
    run_dir: Path
    config: RunConfig
    overrides: list[str]


def plan_runs(o: SubmitOptions) -> tuple[Path, list[PlannedRun]]:
    """(the folder for submitit's files, the runs) after checking everything but the cluster."""
    if o.sweep is not None:
        sweep = load_sweep(o.sweep)
        gan, data = o.gan or sweep.gan, o.data or sweep.data
        root = o.run_dir or Path("runs") / (o.name or sweep.name)
        elements = [(root / e.name, [*e.overrides, *o.overrides]) for e in sweep.elements]
    else:
        gan, data = o.gan, o.data
        root = o.run_dir or Path("runs") / (o.name or gan or "run")
        elements = [(root, list(o.overrides))]
    if not gan:
        raise UserError("--gan: required (or `gan = ...` in the sweep file)")
    if not data:
        raise UserError("--data: required (or `data = ...` in the sweep file)")
    try:
        shard_set = ShardSet.open(data)
    except UserError as exc:
        raise UserError(f"--data {exc}") from None
    runs = []
    for run_dir, overrides in elements:
        config = apply_overrides(preset(gan), overrides)
        config.data = str(Path(data).resolve())
        check(config)
        networks_for(config, len(shard_set.classes))  # architecture combinations fail here, not on a node
        if shard_set.image_size != config.model.resolution:
            raise UserError(
                f"--data {data}: images are {shard_set.image_size} px, --gan {gan} trains at "
                f"{config.model.resolution} px (override model.resolution or re-shard)"
            )
        _check_writable(run_dir)
        check_not_held(run_dir)
        runs.append(PlannedRun(run_dir.resolve(), config, overrides))
    return root.resolve(), runs


def _check_writable(run_dir: Path) -> None:
    """The run dir, or the nearest folder above it that exists, must be writable (nothing is created:
    --dry-run leaves no trace)."""
    existing = run_dir.resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--run-dir {run_dir}: not writable ({existing} is not a writable folder)")


def make_executor(o: SubmitOptions, folder: Path) -> submitit.AutoExecutor:
    cluster = o.cluster
    if cluster == "auto":
        cluster = "slurm" if slurm_info.available() else "local"
    if cluster not in ("slurm", "local"):
        raise UserError(f"--cluster {o.cluster}: expected slurm, local or auto")
    if cluster == "slurm":
        if not slurm_info.available():
            raise UserError("--cluster slurm: sbatch is not on PATH (is this a SLURM login node?)")
        partition = o.partition or slurm_info.default_partition()
        if partition is not None:
            total = slurm_info.partition_nodes(partition)
            if o.nodes > total:
                raise UserError(f"--nodes {o.nodes}: partition {partition} has only {total} node(s)")
    elif o.nodes != 1:
        raise UserError(f"--nodes {o.nodes}: --cluster local runs on this machine only (use --nodes 1)")
    for name in ("nodes", "tasks_per_node", "time_min", "signal_delay_s"):
        if getattr(o, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(o, name)}: expected at least 1")
    executor = submitit.AutoExecutor(folder=folder / "slurm", cluster=cluster, slurm_max_num_timeout=o.max_timeouts)
    tasks = o.gpus_per_node or o.tasks_per_node
    params: dict[str, Any] = {
        "name": o.name or folder.name,
        "nodes": o.nodes,
        "tasks_per_node": tasks,
        "timeout_min": o.time_min,
    }
    if o.gpus_per_node:
        params["gpus_per_node"] = o.gpus_per_node
    if o.cpus_per_task:
        params["cpus_per_task"] = o.cpus_per_task
    if cluster == "slurm":
        extra = {"requeue": True}
        params |= {
            "slurm_signal_delay_s": o.signal_delay_s,
            "slurm_array_parallelism": o.array_parallelism,
            "slurm_additional_parameters": extra,
            # Threads per rank: torch would otherwise take every core of the node.
            "slurm_setup": [f"export OMP_NUM_THREADS={o.threads or o.cpus_per_task or 1}"],
        }
        for key, value in (("partition", o.partition), ("account", o.account), ("qos", o.qos),
                           ("constraint", o.constraint), ("mem", o.mem)):  # fmt: skip
            if value:
                params[f"slurm_{key}"] = value
    executor.update_parameters(**params)
    return executor


def sbatch_script(executor: submitit.AutoExecutor) -> str:
    """The sbatch script submitit would submit (for --dry-run; the local executor has none)."""
    inner = executor._executor  # submitit exposes no public way to render it
    if not hasattr(inner, "_make_submission_file_text"):
        return f"(--cluster local: {inner.__class__.__name__} runs the tasks as local processes, no sbatch script)"
    return inner._make_submission_file_text(inner._submitit_command_str, "DRY-RUN")


@dataclass
class Submitted:
    job_id: str
    run_dir: Path
    logs: list[Path]


def submit(o: SubmitOptions) -> tuple[list[Submitted], list[PlannedRun], str | None]:
    """Submit the runs; with dry_run, submit nothing and return the sbatch script instead."""
    folder, runs = plan_runs(o)
    if o.dry_run:
        created = folder  # submitit makes its folder: undo that, a dry run leaves no trace
        while not created.parent.exists():
            created = created.parent
        existed = created.exists()
        try:
            return [], runs, sbatch_script(make_executor(o, folder))
        finally:
            if not existed:
                shutil.rmtree(created, ignore_errors=True)
    executor = make_executor(o, folder)
    for run in runs:
        run.run_dir.mkdir(parents=True, exist_ok=True)
    jobs_in = [TrainJob(r.config.to_dict(), str(r.run_dir)) for r in runs]
    try:
        with _child_stderr_captured():  # sbatch's own error line would come on top of ours
            if len(runs) == 1 and o.sweep is None:
                jobs = [executor.submit(jobs_in[0])]
            else:
                with executor.batch():  # one SLURM array: each element requeues on its own
                    jobs = [executor.submit(j) for j in jobs_in]
    except submitit.core.utils.FailedJobError as exc:
        reason = next((line for line in str(exc).splitlines() if "error" in line.lower()), str(exc).splitlines()[0])
        raise UserError(f"sbatch refused the job: {reason.strip()}") from None
    submitted = []
    for run, job in zip(runs, jobs, strict=True):
        logs = [Path(job.paths.stdout), Path(job.paths.stderr)]
        write_json(
            run.run_dir / JOB_RECORD,
            {"job_id": str(job.job_id), "submitted": time.time(), "cluster": executor.cluster,
             "overrides": run.overrides, "logs": [str(p) for p in logs], "nodes": o.nodes,
             "tasks_per_node": o.gpus_per_node or o.tasks_per_node},
        )  # fmt: skip
        submitted.append(Submitted(str(job.job_id), run.run_dir, logs))
    return submitted, runs, None


@contextlib.contextmanager
def _child_stderr_captured() -> Iterator[None]:
    """Send what child processes (sbatch) write to stderr into a temp file while inside."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def read_job_record(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / JOB_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
