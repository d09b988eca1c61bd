"""What SLURM says about partitions and jobs (sinfo, scontrol, sacct, squeue), as plain values."""

from __future__ import annotations

import shutil
import subprocess

from hpcgan.errors import UserError


def available() -> bool:
    return shutil.which("sbatch") is not None


def _run(*cmd: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{cmd[0]}: could not ask SLURM ({exc})") from None


def partition_nodes(partition: str) -> int:
    """How many nodes `partition` has; a one-line error when SLURM does not know it."""
    proc = _run("scontrol", "show", "partition", partition, "--oneliner")
    if proc.returncode != 0 or "TotalNodes=" not in proc.stdout:
        names = ", ".join(partitions()) or "none"
        raise UserError(f"--partition {partition}: no such partition; this cluster has {names}")
    field = next(f for f in proc.stdout.split() if f.startswith("TotalNodes="))
    return int(field.split("=", 1)[1])


def partitions() -> list[str]:
    out = _run("sinfo", "-h", "-o", "%P").stdout.split()
    return [p.rstrip("*") for p in out]


def default_partition() -> str | None:
    return next((p.rstrip("*") for p in _run("sinfo", "-h", "-o", "%P").stdout.split() if p.endswith("*")), None)


def job_states(job_ids: list[str]) -> dict[str, str]:
    """Job id -> state (COMPLETED, RUNNING, PREEMPTED, ...), from accounting when it runs, else squeue."""
    ids = [j for j in job_ids if j]
    if not ids:
        return {}
    states: dict[str, str] = {}
    proc = _run("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(ids))
    if proc.returncode == 0:
        for line in proc.stdout.splitlines():
            job, _, state = line.partition("|")
            if job in ids and state:
                states[job] = state.split()[0]  # "CANCELLED by 0" -> CANCELLED
    missing = [j for j in ids if j not in states]
    if missing:
        proc = _run("squeue", "-h", "-o", "%i|%T", "-j", ",".join(missing))
        for line in proc.stdout.splitlines():
            job, _, state = line.partition("|")
            if job in missing:
                states[job] = state
    return states
