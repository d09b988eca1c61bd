"""`hpcgan doctor` on the real local SLURM cluster: a 3-node probe that passes, a run dir that names a
different folder on each node (the per-node path a node-local disk amounts to), --here, a probe that
cannot start within --timeout, and bad input as one line."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO, assert_one_line_error, run_cli
from tests.slurm_cluster import sh, stand_in_apptainer, wait_for


def doctor(*args, check=False, **kwargs):
    return run_cli("doctor", *args, check=check, threads=1, **kwargs)


def statuses(proc) -> dict[str, tuple[str, str]]:
    """check name -> (status, the rest of its line), from the printed lines."""
    found = {}
    for line in proc.stdout.splitlines():
        status, name_and_detail = line[:5].strip(), line[6:]
        name, detail = name_and_detail[:20].strip(), name_and_detail[21:]
        found[name] = (status, detail)
    return found


def test_a_three_node_probe_passes_every_check(slurm, tmp_path):
    run_dir = tmp_path / "run"
    proc = doctor("--nodes", "3", "--run-dir", run_dir, "--logs", tmp_path / "logs")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = statuses(proc)
    assert found["run dir shared"] == ("ok", f"n2, n3 read what n1 wrote in {run_dir} (ext4)")
    assert found["all-reduce"][0] == "ok" and "between 3 nodes (gloo" in found["all-reduce"][1]
    assert found["clock skew"][0] == "ok" and found["versions"][0] == "ok"
    assert found["scontrol requeue"][0] == "ok" and "Requeue=1" in found["scontrol requeue"][1]
    assert found["preemption signal"][0] == "ok" and found["sacct accounting"][0] == "ok"
    assert found["Inception weights"][0] in ("ok", "warn")  # present or not on this machine: both are true answers
    assert not any(status == "fail" for status, _ in found.values())
    assert list(run_dir.iterdir()) == []  # the token is gone
    assert "probe job" in proc.stderr


def test_with_container_the_probe_runs_in_the_image_with_the_run_dir_and_logs_bound(slurm, tmp_path):
    stand_in, calls = stand_in_apptainer(tmp_path)
    image = tmp_path / "hpcgan.sif"
    image.write_bytes(b"")
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    proc = doctor("--nodes", "2", "--run-dir", run_dir, "--logs", logs, "--gan", "dcgan64", "--container", image,
                  env={"HPCGAN_APPTAINER": str(stand_in)})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(proc)["run dir shared"][0] == "ok"
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert sorted(r["rank"] for r in recorded) == ["0", "1"]
    binds = ",".join(str(p.resolve()) for p in (REPO, logs, run_dir))  # where it was started, what it writes
    for r in recorded:
        assert r["argv"][:6] == ["exec", "--nv", "--bind", binds, str(image), "python"], r


def test_a_run_dir_each_node_names_differently_fails_with_the_fix(slurm, tmp_path):
    per_node = f"{tmp_path}/run/$SLURMD_NODENAME"
    proc = doctor("--nodes", "3", "--run-dir", per_node, "--logs", tmp_path / "logs")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status, detail = statuses(proc)["run dir shared"]
    assert status == "fail" and f"n2: {tmp_path}/run/n2" in detail
    assert "fix: use one path every node resolves alike: no per-node variable in --run-dir" in detail
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["n1", "n2", "n3"]
    assert [line.split()[0] for line in proc.stdout.splitlines()].count("fail") == 1


def test_here_checks_this_process_and_the_cluster_config(slurm, tmp_path):
    proc = doctor("--here", "--run-dir", tmp_path / "run", "--gan", "dcgan64", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = {c["name"]: c for c in json.loads(proc.stdout)}
    assert found["SLURM reachable"]["status"] == "ok" and found["preemption mode"]["status"] == "ok"
    assert found["all-reduce"]["status"] == "skip" and found["all-reduce"]["detail"].startswith("one node")
    space = found["free space"]
    assert space["status"] == "ok" and "of dcgan64 need 471 MB (94 MB each)" in space["detail"]
    assert "probe job" not in proc.stderr
    # Off-cluster (no sbatch on PATH): the node checks alone
    off = statuses(doctor("--here", "--run-dir", tmp_path / "run", env={"PATH": str(tmp_path)}))
    assert off["SLURM reachable"] == ("skip", "no sbatch on PATH: cluster checks skipped")
    assert "preemption mode" not in off and off["run dir writable"][0] == "ok"


def test_a_probe_that_cannot_start_is_cancelled_after_the_timeout(slurm, tmp_path):
    # Both CPUs of n1 taken: a probe on all 3 nodes has to wait
    blocker = sh("sbatch", "--parsable", "-w", "n1", "-N", "1", "-n", "2", "-o", "/dev/null", "--wrap",
                 "sleep 60").strip()  # fmt: skip
    try:
        wait_for(lambda: sh("squeue", "-h", "-j", blocker, "-o", "%T").strip() == "RUNNING", 60, "the blocker to run")
        proc = doctor("--nodes", "3", "--run-dir", tmp_path / "run", "--logs", tmp_path / "logs", "--timeout", "2")
    finally:
        subprocess.run(["scancel", blocker], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status, detail = statuses(proc)["probe job"]
    assert status == "warn" and "did not start within 2 s (squeue: PENDING, reason" in detail and "cancelled" in detail
    job = detail.split()[1]
    assert f"probe job {job} pending (" in proc.stderr  # the wait is said while it lasts
    wait_for(lambda: sh("squeue", "-h", "-j", job).strip() == "", 30, f"probe job {job} to leave the queue")


def test_bad_input_is_one_line(slurm, tmp_path):
    logs = ["--logs", tmp_path / "logs"]
    assert_one_line_error(doctor("--partition", "gpu-a100", *logs), "--partition gpu-a100", "low, high")
    assert_one_line_error(doctor("--nodes", "0", *logs), "--nodes 0: expected at least 1")
    assert_one_line_error(doctor("--nodes", "4", *logs), "--nodes 4: partition low has only 3 node(s)")
    (tmp_path / "file").write_text("")
    assert_one_line_error(doctor("--run-dir", tmp_path / "file" / "run", *logs), "cannot create it (Not a directory)")
    assert_one_line_error(doctor("--here", "--nodes", "3"), "--here checks this machine only")
    assert_one_line_error(doctor("--container", tmp_path / "none.sif", *logs), "none.sif: no such image file")
    assert_one_line_error(doctor("--here", "--container", "docker://x"), "start it inside the image instead")
    no_slurm = {"PATH": str(tmp_path)}  # python runs by its full path; sbatch is nowhere
    assert_one_line_error(doctor(*logs, env=no_slurm), "sbatch is not on PATH")
    elsewhere = tmp_path / "etc"  # the cluster's config, with slurmctld on a port where none listens
    shutil.copytree(Path(os.environ["SLURM_CONF"]).parent, elsewhere)
    conf = elsewhere / "slurm.conf"
    conf.write_text(re.sub(r"(?m)^SlurmctldPort=.*$", "SlurmctldPort=1", conf.read_text()))
    down = doctor(*logs, env={"SLURM_CONF": str(conf)})
    assert down.returncode == 1 and down.stdout.split()[:3] == ["fail", "SLURM", "reachable"], down.stdout + down.stderr
    assert not (tmp_path / "logs").exists()  # nothing was submitted
    assert os.environ.get("SLURM_CONF")
