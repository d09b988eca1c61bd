"""hpcgan/launch/doctor_cluster.py and slurm_info's parsers: the verdicts on the local cluster's real
`scontrol show config` / `show partition` / `show job` output, and on that output with one setting
changed as another cluster would have it."""

import subprocess

import pytest

from hpcgan.launch.doctor_cluster import accounting_check, preemption_checks, requeue_check
from hpcgan.launch.slurm_info import parse_config, parse_oneliner
from tests.slurm_cluster import cluster_env


def scontrol(*args: str) -> str:
    return subprocess.run(["scontrol", "show", *args], env=cluster_env(), capture_output=True, text=True,
                          check=True, timeout=60).stdout  # fmt: skip


@pytest.fixture(scope="module")
def config_text() -> str:
    return scontrol("config")


def by_name(checks):
    return {c.name: c for c in checks}


def test_the_real_config_parses_and_the_local_cluster_is_preemption_ready(config_text):
    config = parse_config(config_text)
    assert config["SlurmctldParameters"] == "preempt_send_user_signal"
    assert config["PreemptType"] == "preempt/partition_prio" and config["JobRequeue"] == "1"
    assert config["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert config["SLURM_VERSION"].count(".") == 2
    low = by_name(preemption_checks(config, parse_oneliner(scontrol("partition", "low", "--oneliner"))))
    assert {c.status for c in low.values()} == {"ok"}
    assert "REQUEUE" in low["preemption mode"].detail and "GraceTime=10" in low["grace time"].detail
    # high preempts the others and is never preempted itself (PreemptMode=OFF)
    (high,) = preemption_checks(config, parse_oneliner(scontrol("partition", "high", "--oneliner")))
    assert high.status == "ok" and "not preempted" in high.detail
    assert accounting_check(config, sacct_works=True).status == "ok"


def test_a_cluster_without_the_user_signal_fails_with_the_setting_to_ask_for(config_text):
    config = parse_config(config_text.replace("preempt_send_user_signal", "(null)"))
    partition = parse_oneliner(scontrol("partition", "low", "--oneliner"))
    signal = by_name(preemption_checks(config, partition))["preemption signal"]
    assert signal.status == "fail" and "SIGTERM only" in signal.detail
    assert "SlurmctldParameters=preempt_send_user_signal" in signal.fix


def test_cancel_mode_and_no_grace_time_warn(config_text):
    config = parse_config(config_text)
    text = scontrol("partition", "low", "--oneliner").replace("PreemptMode=REQUEUE", "PreemptMode=CANCEL")
    checks = by_name(preemption_checks(config, parse_oneliner(text.replace("GraceTime=10", "GraceTime=0"))))
    assert checks["preemption mode"].status == "warn" and "cancelled" in checks["preemption mode"].detail
    assert checks["grace time"].status == "warn" and "GraceTime" in checks["grace time"].fix


def test_no_accounting_warns_with_the_storage_type(config_text):
    config = parse_config(config_text.replace("accounting_storage/slurmdbd", "accounting_storage/none"))
    check = accounting_check(config, sacct_works=False)
    assert check.status == "warn" and "accounting_storage/none" in check.detail and "slurmdbd" in check.fix


@pytest.mark.parametrize("flag, status", [("--requeue", "ok"), ("--no-requeue", "fail")])
def test_requeue_reads_the_jobs_own_flag(config_text, flag, status):
    """A held job (it never runs): slurmctld's record of it says whether it may be requeued."""
    env = cluster_env()
    job = subprocess.run(["sbatch", "--parsable", "--hold", flag, "-o", "/dev/null", "--wrap", "true"], env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()  # fmt: skip
    try:
        fields = parse_oneliner(scontrol("job", job, "--oneliner"))
    finally:
        subprocess.run(["scancel", job], env=env, timeout=60)
    check = requeue_check(parse_config(config_text), fields)
    assert check.status == status and f"job {job}" in check.detail
