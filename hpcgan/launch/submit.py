"""Submit training runs through submitit: one multi-node job, or a sweep as one SLURM array; or
(--eval RUN) the evaluation of a run's checkpoints, one array element per checkpoint.

Everything that can be wrong is checked before anything is submitted (the partition exists and is
big enough, the data is a shard set, the preset exists, the run dir is writable and not held by a
live job), so a mistake costs one line, not a queue wait.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from hpcgan.atomic import write_json
from hpcgan.data.index import ShardSet
from hpcgan.errors import UserError
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.inception import find_weights
from hpcgan.launch import slurm_info
from hpcgan.launch.container import ContainerLaunch, check_image, container_launch
from hpcgan.launch.eval_job import EvalJob
from hpcgan.launch.job import TrainJob
from hpcgan.launch.submit_checks import check_folder, check_submit_options
from hpcgan.launch.submit_options import SubmitOptions
from hpcgan.launch.sweep import load_sweep
from hpcgan.runs.hold import check_not_held
from hpcgan.runs.layout import RunPaths
from hpcgan.runs.records import read_run_config
from hpcgan.train.config import RunConfig, apply_overrides, check, networks_for
from hpcgan.train.presets import preset
from hpcgan.trained.evaluate import EvalOptions, check_options, select_checkpoints

EVAL_FOLDER = "eval-slurm"  # submitit's files of eval jobs, apart from the training job's


@dataclass
class PlannedRun:
    run_dir: Path
    config: RunConfig
    overrides: list[str]


def plan_runs(o: SubmitOptions) -> tuple[Path, list[PlannedRun]]:
    """(the folder for submitit's files, the runs) after checking everything but the cluster."""
    check_submit_options(o)
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
    check_folder("--run-dir", root.resolve())  # the script's --output lines hold it
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


def _check_writable(run_dir: Path, flag: str = "--run-dir") -> None:
    """The run dir, or the nearest folder above it that exists, must be writable (nothing is created:
    --dry-run leaves no trace)."""
    existing = run_dir.resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {run_dir}: not writable ({existing} is not a writable folder)")


def make_executor(
    o: SubmitOptions, folder: Path, submitit_folder: Path | None = None, job_name: str | None = None,
    binds: Sequence[tuple[str, Path]] = (),
) -> submitit.AutoExecutor:  # fmt: skip
    """An executor for `o`; submitit's files go to `submitit_folder` (default FOLDER/slurm), the job
    name is `job_name` (default --name, or the folder's name). With --container, `binds` (the option
    that named a path, the path: what the tasks read and write) are mounted into the container."""
    cluster = o.cluster
    unchecked = o.dry_run and not slurm_info.available()  # a laptop: render the script, check nothing
    if cluster == "auto":
        cluster = "slurm" if slurm_info.available() or unchecked else "local"
    if cluster not in ("slurm", "local"):
        raise UserError(f"--cluster {o.cluster}: expected slurm, local or auto")
    if cluster == "slurm":
        if not unchecked:
            _check_against_cluster(o)
    elif o.nodes != 1:
        raise UserError(f"--nodes {o.nodes}: --cluster local runs on this machine only (use --nodes 1)")
    for name in ("nodes", "tasks_per_node", "time_min", "signal_delay_s"):
        if getattr(o, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(o, name)}: expected at least 1")
    launch = _container_launch(o, cluster, list(binds))
    python = {f"{cluster}_python": launch.python} if launch else {}
    with _srun_not_required() if unchecked and cluster == "slurm" else contextlib.nullcontext():
        executor = submitit.AutoExecutor(folder=submitit_folder or folder / "slurm", cluster=cluster,
                                         slurm_max_num_timeout=o.max_timeouts, **python)  # fmt: skip
    tasks = o.gpus_per_node or o.tasks_per_node
    params: dict[str, Any] = {
        "name": job_name or o.name or folder.name,
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
        if launch and launch.srun_args:
            params["slurm_srun_args"] = launch.srun_args
    executor.update_parameters(**params)
    return executor


def _container_launch(o: SubmitOptions, cluster: str, binds: list[tuple[str, Path]]) -> ContainerLaunch | None:
    """--container: how each task starts in the image (None: submitit's own interpreter, no image)."""
    if o.container is None:
        return None
    if o.container_runtime == "pyxis" and cluster != "slurm":
        raise UserError(f"--container-runtime pyxis: pyxis is an srun plugin, and --cluster {o.cluster} runs here "
                        "without SLURM (use --cluster slurm, or --container-runtime apptainer)")  # fmt: skip
    image = check_image(o.container, o.container_runtime)
    return container_launch(image, o.container_runtime, binds, Path.cwd())


@contextlib.contextmanager
def _srun_not_required() -> Iterator[None]:
    """A dry run off-cluster: submitit's SlurmExecutor refuses to exist without srun on PATH, though
    rendering the script needs none (its check is the classmethod `affinity`, -1 without srun)."""
    slurm_executor = submitit.SlurmExecutor
    original = slurm_executor.__dict__["affinity"]
    slurm_executor.affinity = classmethod(lambda cls: 1)
    try:
        yield
    finally:
        slurm_executor.affinity = original


def _check_against_cluster(o: SubmitOptions) -> None:
    if not slurm_info.available():
        raise UserError("--cluster slurm: sbatch is not on PATH (is this a SLURM login node?)")
    partition = o.partition or slurm_info.default_partition()
    if partition is not None:
        total = slurm_info.partition_nodes(partition)
        if o.nodes > total:
            raise UserError(f"--nodes {o.nodes}: partition {partition} has only {total} node(s)")


def sbatch_script(executor: submitit.AutoExecutor, array_size: int = 1) -> str:
    """The sbatch script submitit would submit (for --dry-run; the local executor has none), with
    the --array line an executor.batch() of `array_size` > 1 jobs gets."""
    inner = executor._executor  # submitit exposes no public way to render it
    if not isinstance(inner, submitit.SlurmExecutor):
        return (f"(--cluster local: {inner.__class__.__name__} runs the tasks as local processes, no sbatch script)\n"
                f"# each task runs: {inner._submitit_command_str}")  # fmt: skip
    if array_size > 1:
        inner.parameters["map_count"] = array_size  # as submitit's array submission sets it (this executor dies here)
    return inner._make_submission_file_text(inner._submitit_command_str, "DRY-RUN")


@dataclass
class Submitted:
    job_id: str
    run_dir: Path
    logs: list[Path]


def submit(o: SubmitOptions) -> tuple[list[Submitted], list[PlannedRun], str | None]:
    """Submit the runs; with dry_run, submit nothing and return the sbatch script instead."""
    if o.eval_run is not None:
        raise ValueError("SubmitOptions.eval_run is set: call submit_eval")
    folder, runs = plan_runs(o)
    binds = [("--run-dir", folder), ("--data", Path(runs[0].config.data))]  # for --container
    if o.dry_run:
        with _no_trace(folder):  # submitit makes its folder
            return [], runs, sbatch_script(make_executor(o, folder, binds=binds), len(runs))  # a sweep: its array
    executor = make_executor(o, folder, binds=binds)
    for run in runs:
        run.run_dir.mkdir(parents=True, exist_ok=True)
    jobs_in = [TrainJob(r.config.to_dict(), str(r.run_dir)) for r in runs]
    jobs = submit_jobs(executor, jobs_in)
    submitted = []
    for run, job in zip(runs, jobs, strict=True):
        logs = [Path(job.paths.stdout), Path(job.paths.stderr)]
        write_json(
            RunPaths(run.run_dir).job_record,
            {"job_id": str(job.job_id), "submitted": time.time(), "cluster": executor.cluster,
             "overrides": run.overrides, "logs": [str(p) for p in logs], "nodes": o.nodes,
             "tasks_per_node": o.gpus_per_node or o.tasks_per_node, **_container_record(o)},
        )  # fmt: skip
        submitted.append(Submitted(str(job.job_id), run.run_dir, logs))
    return submitted, runs, None


@contextlib.contextmanager
def _no_trace(folder: Path) -> Iterator[None]:
    """Remove what was created of `folder` (and the folders above it) inside: a dry run leaves no trace."""
    created = folder
    while not created.parent.exists():
        created = created.parent
    existed = created.exists()
    try:
        yield
    finally:
        if not existed:
            shutil.rmtree(created, ignore_errors=True)


def submit_jobs(executor: submitit.AutoExecutor, jobs_in: list[Any]) -> list[submitit.Job]:
    """One job, or several as one SLURM array (each element requeues on its own); sbatch's refusal
    becomes one line."""
    try:
        # sbatch's own error line would come on top of ours; a batch of one is submitted as a plain job
        with _child_stderr_captured(), executor.batch():
            jobs = [executor.submit(j) for j in jobs_in]
    except submitit.core.utils.FailedJobError as exc:
        reason = next((line for line in str(exc).splitlines() if "error" in line.lower()), str(exc).splitlines()[0])
        raise UserError(f"sbatch refused the job: {reason.strip()}") from None
    return jobs


@dataclass
class EvalPlan:
    run_dir: Path
    checkpoints: list[Path]  # oldest first: one array element each
    weights: str | None  # the extractor's weights file as the nodes will read it
    data: Path  # the run's shard set (the real images)


@dataclass
class SubmittedEval:
    job_id: str
    checkpoint: Path
    logs: list[Path]


def plan_eval(o: SubmitOptions) -> EvalPlan:
    """Check an --eval submission: the run, its shard set, the checkpoints and the options."""
    check_submit_options(o)
    run_dir = Path(o.eval_run or "")
    training = (("--gan", o.gan), ("--data", o.data), ("--sweep", o.sweep), ("--run-dir", o.run_dir),
                ("key=value overrides", o.overrides))  # fmt: skip
    given = [flag for flag, value in training if value]
    if given:
        raise UserError(f"--eval {run_dir}: evaluates a trained run as it is; drop {', '.join(given)}")
    try:
        data = read_run_config(run_dir)["data"]
    except UserError as exc:
        raise UserError(f"--eval {exc}") from None
    try:
        shard_set = ShardSet.open(data)
    except UserError as exc:
        raise UserError(f"--eval {run_dir}: its shard set {exc}") from None
    try:
        shard_set.shards(o.split)
    except UserError as exc:
        raise UserError(f"--split {o.split}: {exc}") from None
    check_options(EvalOptions(n=o.eval_n, split=o.split, extractor=o.extractor, weights=o.weights))
    weights = _extractor_weights(o.extractor, o.weights)
    checkpoints = select_checkpoints(run_dir, o.checkpoints)
    _check_writable(run_dir, "--eval")  # eval.jsonl, eval-job.json and eval-slurm/ go there
    check_folder("--eval", run_dir.resolve())
    return EvalPlan(run_dir.resolve(), [p.resolve() for p in checkpoints], weights, Path(data).resolve())


def _extractor_weights(extractor: str, weights: str | None) -> str | None:
    """The weights file as an absolute path, checked here: the nodes must not find out it is missing."""
    if extractor == "inception":
        return str(find_weights(weights).resolve())  # also $HPCGAN_INCEPTION_WEIGHTS or the hub cache
    build_extractor(extractor, weights=weights)  # an unknown name, missing xrv weights
    return str(Path(weights).resolve()) if weights else None


def submit_eval(o: SubmitOptions) -> tuple[list[SubmittedEval], EvalPlan, str | None]:
    """Submit the evaluation of o.eval_run's checkpoints, one array element (all its ranks) per
    checkpoint; with dry_run, submit nothing and return the sbatch script instead."""
    plan = plan_eval(o)
    folder = plan.run_dir / EVAL_FOLDER
    name = o.name or f"eval-{plan.run_dir.name}"
    binds = [("--eval", plan.run_dir), (f"--eval {plan.run_dir}: its shard set", plan.data)]  # for --container
    if plan.weights:
        binds.append(("--xrv-weights/--inception-weights", Path(plan.weights)))
    if o.dry_run:
        with _no_trace(folder):
            executor = make_executor(o, plan.run_dir, folder, name, binds)
            return [], plan, sbatch_script(executor, len(plan.checkpoints))
    executor = make_executor(o, plan.run_dir, folder, name, binds)
    jobs_in = [EvalJob(str(plan.run_dir), path.name, o.eval_n, o.split, o.extractor, plan.weights)
               for path in plan.checkpoints]  # fmt: skip
    jobs = submit_jobs(executor, jobs_in)
    submitted = [SubmittedEval(str(job.job_id), path, [Path(job.paths.stdout), Path(job.paths.stderr)])
                 for path, job in zip(plan.checkpoints, jobs, strict=True)]  # fmt: skip
    write_json(
        RunPaths(plan.run_dir).eval_job_record,
        {"job_ids": {s.checkpoint.name: s.job_id for s in submitted}, "submitted": time.time(),
         "cluster": executor.cluster, "logs": {s.checkpoint.name: [str(p) for p in s.logs] for s in submitted},
         "nodes": o.nodes, "tasks_per_node": o.gpus_per_node or o.tasks_per_node, "n": o.eval_n, "split": o.split,
         "extractor": o.extractor, "weights": plan.weights, **_container_record(o)},
    )  # fmt: skip
    return submitted, plan, None


def _container_record(o: SubmitOptions) -> dict[str, str]:
    """What job.json keeps of --container (the image as given)."""
    return {"container": o.container, "container_runtime": o.container_runtime} if o.container else {}


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

