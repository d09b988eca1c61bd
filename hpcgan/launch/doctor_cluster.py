"""The cluster-side checks of `hpcgan doctor`, from the login node: is SLURM there, does accounting
answer, does preemption reach a job as a signal it can checkpoint on, can a job requeue itself.

The judgments take scontrol's fields as plain dicts (hpcgan/launch/slurm_info.py asks SLURM), so they
are tested on real `scontrol show config` output."""

from __future__ import annotations

from hpcgan.launch import slurm_info
from hpcgan.launch.doctor_report import Check

ADMIN = "ask the cluster admins to set"


def reachable_check(ping: str | None, config: dict[str, str]) -> Check:
    if ping is None:
        return Check("fail", "SLURM reachable", "scontrol ping: slurmctld does not answer",
                     "check SLURM_CONF and that slurmctld runs (scontrol ping)")  # fmt: skip
    version = config.get("SLURM_VERSION", "?")
    return Check("ok", "SLURM reachable", f"{ping} (SLURM {version}, cluster {config.get('ClusterName', '?')})")


def accounting_check(config: dict[str, str], sacct_works: bool) -> Check:
    storage = config.get("AccountingStorageType", "?")
    if sacct_works and not storage.endswith("/none"):
        return Check("ok", "sacct accounting", f"sacct answers ({storage})")
    return Check("warn", "sacct accounting", f"sacct does not answer (AccountingStorageType={storage}): "
                 "submitit and `hpcgan status` cannot tell COMPLETED, FAILED and PREEMPTED apart once a job "
                 "leaves the queue", f"{ADMIN} AccountingStorageType=accounting_storage/slurmdbd")  # fmt: skip


def preemption_checks(config: dict[str, str], partition: dict[str, str]) -> list[Check]:
    """Preemption on `partition`: off, or on with a USR2 (preempt_send_user_signal) and a GraceTime
    long enough to save a checkpoint before SIGKILL."""
    name = partition.get("PartitionName", "?")
    kind = config.get("PreemptType", "preempt/none")
    mode = partition.get("PreemptMode") or config.get("PreemptMode", "OFF")
    if kind.endswith("/none") or mode.upper().startswith("OFF"):
        return [Check("ok", "preemption", f"jobs in {name} are not preempted (PreemptType={kind}, "
                      f"PreemptMode={mode})")]  # fmt: skip
    checks = []
    flags = config.get("SlurmctldParameters", "")
    if "preempt_send_user_signal" in flags.split(","):
        checks.append(Check("ok", "preemption signal", f"a preempted job gets USR2 first (SlurmctldParameters="
                            f"{flags}), so it checkpoints before it goes"))  # fmt: skip
    else:
        checks.append(Check("fail", "preemption signal", f"a preempted job in {name} gets SIGTERM only, no USR2 "
                            f"(SlurmctldParameters={flags or '(null)'}): it stops without a checkpoint and resumes "
                            "from the last periodic one",
                            f"{ADMIN} SlurmctldParameters=preempt_send_user_signal, or lower "
                            "checkpoint.every"))  # fmt: skip
    detail = f"PreemptType={kind}, PreemptMode={mode} on {name} (cluster: {config.get('PreemptMode', '?')})"
    if "REQUEUE" in mode.upper():
        checks.append(Check("ok", "preemption mode", f"{detail}: a preempted job is requeued and resumes"))
    elif "CANCEL" in mode.upper():
        checks.append(Check("warn", "preemption mode", f"{detail}: a preempted job is cancelled, not requeued",
                            "resubmit the same command after a preemption (the run dir resumes), or use a "
                            "partition with PreemptMode=REQUEUE"))  # fmt: skip
    else:  # SUSPEND, GANG: the job is paused and goes on, no signal needed
        checks.append(Check("ok", "preemption mode", f"{detail}: a preempted job is paused and continues"))
    grace = partition.get("GraceTime", "0")
    if "SUSPEND" not in mode.upper() and grace in ("0", ""):
        checks.append(Check("warn", "grace time", f"GraceTime=0 on {name}: SIGKILL follows the preemption signal at "
                            "once, no time to save",
                            f"{ADMIN} GraceTime (e.g. 120 s) on partition {name}"))  # fmt: skip
    elif "SUSPEND" not in mode.upper():
        checks.append(Check("ok", "grace time", f"GraceTime={grace} s on {name} between the signal and SIGKILL"))
    return checks


def requeue_check(config: dict[str, str], job: dict[str, str] | None) -> Check:
    """submitit requeues with `scontrol requeue` and hpcgan submits with --requeue; `job` is a job of
    ours (the probe) as slurmctld holds it, or None (then the cluster default is all there is)."""
    default = config.get("JobRequeue", "?")
    if job:
        if job.get("Requeue") == "1":
            return Check("ok", "scontrol requeue", f"job {job.get('JobId')} holds Requeue=1 as submitted with "
                         f"--requeue (cluster default JobRequeue={default})")  # fmt: skip
        return Check("fail", "scontrol requeue", f"job {job.get('JobId')} was submitted with --requeue but holds "
                     f"Requeue={job.get('Requeue')}: the cluster strips it, a job cannot requeue itself",
                     "ask the cluster admins whether a job_submit plugin removes --requeue")  # fmt: skip
    if default == "1":
        return Check("ok", "scontrol requeue", "JobRequeue=1: jobs may be requeued (hpcgan submits with --requeue)")
    return Check("ok", "scontrol requeue", f"JobRequeue={default}: off by default, but hpcgan submits with "
                 "--requeue (the probe job, which checks it, did not run)")  # fmt: skip


def cluster_checks(partition: str | None, probe_job: dict[str, str] | None = None) -> list[Check]:
    """Every cluster-side check; `probe_job`: the probe's `scontrol show job` fields, taken while it ran."""
    ping = slurm_info.ping()
    config = slurm_info.config() if ping else {}
    checks = [reachable_check(ping, config)]
    if ping is None:
        return checks
    checks.append(accounting_check(config, slurm_info.accounting_works()))
    name = partition or slurm_info.default_partition()
    if name:
        checks += preemption_checks(config, slurm_info.partition_fields(name))
    checks.append(requeue_check(config, probe_job))
    return checks
