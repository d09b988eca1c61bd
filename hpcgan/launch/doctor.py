"""`hpcgan doctor`: check a cluster before the first run on it, from the login node.

The cluster-side checks ask slurmctld (hpcgan/launch/doctor_cluster.py). The node checks run in a
short probe job, one task per node, submitted through submitit the way `hpcgan submit` submits
(same executor, so same partition checks, --requeue and rendezvous), or in this process with --here
(hpcgan/launch/doctor_checks.py); their reports are judged in hpcgan/launch/doctor_nodes.py.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcgan.errors import UserError
from hpcgan.launch import slurm_info
from hpcgan.launch.doctor_checks import TOKEN_PREFIX, NodeProbe, probe
from hpcgan.launch.doctor_cluster import cluster_checks, reachable_check
from hpcgan.launch.doctor_nodes import Expected, node_checks
from hpcgan.launch.doctor_report import Check
from hpcgan.launch.submit_checks import check_container, check_text

DEFAULT_GAN = "r3gan256"  # the README's default family, at the size chest X-rays are usually trained
JOB_NAME = "hpcgan-doctor"


@dataclass
class DoctorOptions:
    run_dir: str = "runs"  # as given: $VARIABLES are expanded on each node
    nodes: int | None = None  # of the probe job; default 2 (with --here: this one)
    partition: str | None = None
    gpus_per_node: int = 0
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gan: str = DEFAULT_GAN
    checkpoints: int | None = None  # that must fit; default: the preset's checkpoint.keep + 2
    inception_weights: str | None = None
    here: bool = False
    timeout_s: int = 300  # for the probe job to start
    time_min: int = 5  # the probe job's time limit
    logs: Path = Path(JOB_NAME)  # submitit's files of the probe (on a filesystem the nodes see)
    container: str | None = None  # the probe runs in the image the jobs will run in (--container)
    container_runtime: str = "apptainer"


def checkpoint_size(gan: str) -> tuple[int, int]:
    """(bytes of one checkpoint of preset `gan`, its checkpoint.keep)."""
    from hpcgan.train.checkpoint_size import checkpoint_bytes, parameter_counts
    from hpcgan.train.presets import preset

    config = preset(gan)
    return checkpoint_bytes(config, *parameter_counts(config)), config.checkpoint.keep


def check_options(o: DoctorOptions) -> None:
    for flag, value in (("--run-dir", o.run_dir), ("--partition", o.partition), ("--account", o.account),
                        ("--qos", o.qos), ("--constraint", o.constraint), ("--gan", o.gan),
                        ("--inception-weights", o.inception_weights), ("--logs", o.logs),
                        ("--container", o.container), ("--container-runtime", o.container_runtime)):  # fmt: skip
        check_text(flag, value)
    check_container(o.container, o.container_runtime)
    if o.container and o.here:
        raise UserError("--container: --here checks this process as it runs (start it inside the image instead)")
    for flag, value, least in (("--nodes", o.nodes, 1), ("--gpus-per-node", o.gpus_per_node, 0),
                               ("--timeout", o.timeout_s, 1), ("--time", o.time_min, 1),
                               ("--checkpoints", o.checkpoints, 1)):  # fmt: skip
        if value is not None and value < least:
            raise UserError(f"{flag} {value}: expected at least {least}")
    if o.here and o.nodes not in (None, 1):
        raise UserError(f"--nodes {o.nodes}: --here checks this machine only (drop --nodes or --here)")
    local = os.path.expanduser(os.path.expandvars(o.run_dir))
    if "$" not in local:  # a per-node variable ($SLURMD_NODENAME) is the nodes' to expand
        try:
            Path(local).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--run-dir {o.run_dir}: cannot create it ({exc.strerror or exc})") from None


def run_doctor(o: DoctorOptions, say: Callable[[str], None] = print) -> list[Check]:
    """Every check, in print order; `say(text)` reports progress (the probe's job id, the wait)."""
    check_options(o)
    executor = None
    if not o.here:
        if not slurm_info.available():
            raise UserError("sbatch is not on PATH (is this a SLURM login node? --here checks this machine only)")
        if slurm_info.ping() is None:  # nothing else can be asked, and no probe submitted
            return [reachable_check(None, {})]
        o.nodes = 2 if o.nodes is None else o.nodes
        executor = _probe_executor(o)  # the partition and the node count are checked here
    size, keep = checkpoint_size(o.gan)  # an unknown --gan too: all before anything is submitted
    from hpcgan.eval.inception import WEIGHTS_ENV, WEIGHTS_URL

    expected = Expected(o.gpus_per_node, size, o.checkpoints or keep + 2, o.gan, WEIGHTS_URL, WEIGHTS_ENV)
    if executor is None:
        reports = [probe(o.run_dir, o.inception_weights, 0, 1, f"{TOKEN_PREFIX}here-{os.getpid()}")]
        if not slurm_info.available():
            cluster = [Check("skip", "SLURM reachable", "no sbatch on PATH: cluster checks skipped")]
        else:
            job = os.environ.get("SLURM_JOB_ID")  # --here inside a job: its own Requeue flag
            cluster = cluster_checks(o.partition, slurm_info.job_fields(job) if job else None)
        return cluster + node_checks(reports, expected)
    from hpcgan.launch.submit import submit_jobs

    (job,) = submit_jobs(executor, [NodeProbe(o.run_dir, o.inception_weights)])
    say(f"probe job {job.job_id}: {o.nodes} node(s), submitit files in {o.logs.resolve()}")
    fields: dict[str, str] = {}
    try:
        reports, problem = _wait_for_reports(job, o, fields, say)
    except KeyboardInterrupt:
        _cancel(job.job_id)  # a probe nobody waits for would only take nodes
        raise
    fields = fields or slurm_info.job_fields(job.job_id)  # a probe quicker than the first poll
    checks = cluster_checks(o.partition, fields or None)
    if problem is not None:
        return [*checks, problem]
    return checks + node_checks(reports, expected)


def _probe_executor(o: DoctorOptions) -> Any:
    """submitit's executor for the probe, made as `hpcgan submit` makes one (same checks, --requeue,
    one thread per task), with one task per node."""
    from hpcgan.launch.submit import make_executor
    from hpcgan.launch.submit_options import SubmitOptions

    submit = SubmitOptions(nodes=o.nodes or 2, tasks_per_node=1, partition=o.partition, account=o.account,
                           qos=o.qos, constraint=o.constraint, time_min=o.time_min, signal_delay_s=30,
                           cluster="slurm", threads=1, container=o.container,
                           container_runtime=o.container_runtime)  # fmt: skip
    logs = o.logs.resolve()
    executor = make_executor(submit, logs, submitit_folder=logs, job_name=JOB_NAME, binds=_binds(o, logs))
    if o.gpus_per_node:  # one task per node, holding all of the node's GPUs (not one task per GPU)
        executor.update_parameters(gpus_per_node=o.gpus_per_node)
    return executor


def _binds(o: DoctorOptions, logs: Path) -> list[tuple[str, Path]]:
    """What the probe reads and writes, for --container: a run dir naming a per-node variable is left
    to the node (a bind of it could not be named here)."""
    binds = [("--logs", logs)]
    run_dir = os.path.expanduser(os.path.expandvars(o.run_dir))
    if "$" not in run_dir:
        binds.append(("--run-dir", Path(run_dir)))
    if o.inception_weights:
        binds.append(("--inception-weights", Path(o.inception_weights)))
    return binds


def _wait_for_reports(job: Any, o: DoctorOptions, fields: dict[str, str],
                      say: Callable[[str], None]) -> tuple[list[dict[str, Any]], Check | None]:  # fmt: skip
    """The tasks' reports once the job left the queue, or (no reports, the Check saying why not).
    `fields` gets the job's scontrol fields while slurmctld still holds them (the requeue check)."""
    start, started, said = time.time(), None, ""
    while True:
        queued = slurm_info.queue_state(job.job_id)
        if queued is None:
            break
        if not fields:
            fields |= slurm_info.job_fields(job.job_id)
        state, reason = queued
        if state == "PENDING" and reason != said and time.time() - start > 2:
            said = reason
            say(f"probe job {job.job_id} pending ({reason}); waiting up to {o.timeout_s} s (--timeout)")
        if state == "PENDING" and started is None and time.time() - start > o.timeout_s:
            _cancel(job.job_id)
            return [], Check("warn", "probe job", f"job {job.job_id} did not start within {o.timeout_s} s "
                             f"(squeue: {state}, reason {reason}); cancelled it, node checks not run",
                             "retry with a longer --timeout, fewer --nodes or another --partition")  # fmt: skip
        if state != "PENDING" and started is None:
            started = time.time()
            say(f"probe job {job.job_id} running (waited {started - start:.0f} s)")
        time.sleep(1)  # squeue asks slurmctld: not more often than that
    return _read_reports(job, o.nodes)


def _cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=60)


def _read_reports(job: Any, nodes: int) -> tuple[list[dict[str, Any]], Check | None]:
    from submitit.core.utils import pickle_load

    reports, failures = [], []
    for task in range(nodes):
        paths = job.task(task).paths
        deadline = time.time() + 10  # the result file may trail the job's end on a network filesystem
        while not paths.result_pickle.exists() and time.time() < deadline:
            time.sleep(0.5)
        if paths.result_pickle.exists():
            outcome, value = pickle_load(paths.result_pickle)
            if outcome == "success":
                reports.append(value)
                continue
            failures.append(f"task {task}: " + _last_line(str(value)))
        else:
            log = paths.stderr.read_text(errors="replace") if paths.stderr.exists() else ""
            failures.append(f"task {task}: no result" + (f" ({_last_line(log)})" if log.strip() else
                                                         f", no log at {paths.stderr}"))  # fmt: skip
    if failures:
        return [], Check("fail", "probe job", f"job {job.job_id}: {'; '.join(failures)}",
                         f"see the logs in {job.paths.folder}; the folder (--logs) must be one the nodes see")
    return sorted(reports, key=lambda r: r["rank"]), None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(empty)"
