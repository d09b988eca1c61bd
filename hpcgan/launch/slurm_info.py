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
    return int(partition_fields(partition).get("TotalNodes", "0"))


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


def ping() -> str | None:
    """slurmctld's answer to `scontrol ping` when it is up ("Slurmctld(primary) at HOST is UP"), else None."""
    proc = _run("scontrol", "ping")
    return proc.stdout.strip() if proc.returncode == 0 and "UP" in proc.stdout else None


def config() -> dict[str, str]:
    """`scontrol show config` as key -> value (the "Key = value" lines; plugin sections included)."""
    return parse_config(_run("scontrol", "show", "config").stdout)


def parse_config(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            fields.setdefault(key.strip(), value.strip())  # the main section comes first
    return fields


def partition_fields(partition: str) -> dict[str, str]:
    """`scontrol show partition P` as key -> value; a one-line error when SLURM does not know it."""
    proc = _run("scontrol", "show", "partition", partition, "--oneliner")
    if proc.returncode != 0 or "PartitionName=" not in proc.stdout:
        names = ", ".join(partitions()) or "none"
        raise UserError(f"--partition {partition}: no such partition; this cluster has {names}")
    return parse_oneliner(proc.stdout)


def job_fields(job_id: str) -> dict[str, str]:
    """`scontrol show job ID` as key -> value ({} once the job has left slurmctld's memory)."""
    proc = _run("scontrol", "show", "job", job_id, "--oneliner")
    return parse_oneliner(proc.stdout) if proc.returncode == 0 else {}


def parse_oneliner(text: str) -> dict[str, str]:
    """Key=value words of scontrol's --oneliner output (values with spaces, rare, keep their first word)."""
    return dict(word.split("=", 1) for word in text.split() if "=" in word)


def accounting_works() -> bool:
    """sacct answers (it exits 1 without an accounting storage)."""
    return _run("sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "now-1minutes").returncode == 0


def queue_state(job_id: str) -> tuple[str, str] | None:
    """(state, reason) of a job still in the queue (PENDING, Resources), or None once it left."""
    proc = _run("squeue", "-h", "-j", job_id, "-o", "%T|%r")
    state, _, reason = proc.stdout.strip().partition("|")
    return (state, reason) if proc.returncode == 0 and state else None
