"""Helpers for the tests that run against the real local SLURM cluster (slurm/cluster/local-cluster.sh,
started by .ci/run). Without it they skip, unless HPCGAN_REQUIRE_SLURM=1 (as in CI), where they fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

STATE_DIR = Path(os.environ.get("HPCGAN_SLURM_DIR", "/tmp/hpcgan-slurm"))
# The trainer's default loader settings (2 workers per rank): SLURM signals the workers too, and a
# test without them once missed that scontrol requeue killed them before the save.
TINY = ["model.g_width=8", "model.d_width=8", "train.batch_size=8", "train.log_every=25"]


def cluster_env() -> dict[str, str]:
    """The environment that points SLURM's commands at the local cluster; skips without one."""
    conf = STATE_DIR / "etc" / "slurm.conf"
    env = dict(os.environ, SLURM_CONF=str(conf), HPCGAN_SLURM_DIR=str(STATE_DIR))
    ok = conf.is_file() and subprocess.run(["sinfo"], env=env, capture_output=True).returncode == 0
    if not ok:
        message = f"no local SLURM cluster at {STATE_DIR} (start it: slurm/cluster/local-cluster.sh start)"
        if os.environ.get("HPCGAN_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return env


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def submit(*args) -> str:
    """`hpcgan submit ...` on the cluster; returns the job id."""
    proc = run_cli("submit", "--cluster", "slurm", *args, threads=1)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("submitted job"))
    return line.split()[2].rstrip(":")


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def last_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1])["step"] if lines else 0


def wait_for(predicate, timeout: float, what: str, poll: float = 0.5, seen=None):
    """Poll `predicate` until truthy; `seen()` (e.g. the job's current state) goes into the error."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    last = f"; last seen {seen()}" if seen else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{last}")


def wait_for_state(job_id: str, state: str, timeout: float = 180) -> None:
    """Accounting lags the job's own files on a loaded machine; wait for it, and say what it showed."""
    wait_for(
        lambda: job_state(job_id) == state,
        timeout,
        f"sacct to say {state} for job {job_id}",
        seen=lambda: sh("sacct", "-D", "-X", "-n", "-P", "-o", "JobID,State,ExitCode,End", "-j", job_id).strip(),
    )


def completed(run_dir: Path) -> bool:
    found = events(run_dir)
    return bool(found) and found[-1]["event"] == "completed"


def job_state(job_id: str) -> str:
    out = sh("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", job_id)
    states = [line.split("|")[1].split()[0] for line in out.splitlines() if line.split("|")[0] == job_id]
    return states[-1] if states else ""


def node_of(job_id: str) -> str:
    return wait_for(lambda: sh("squeue", "-h", "-j", job_id, "-o", "%N").strip(), 60, f"job {job_id} to start")


def final_state(run_dir: Path, step: int) -> dict:
    return torch.load(run_dir / "checkpoints" / f"step-{step:07d}.pt", weights_only=True)


# A stand-in for Apptainer ($HPCGAN_APPTAINER): skips its own options (those with a value: --bind),
# records argv and the task's rank, and runs the command after the image, as `apptainer exec` would
# inside it; `python` is the image's interpreter, here the one running the tests.
STAND_IN_APPTAINER = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": args, "rank": os.environ.get("SLURM_PROCID")}}) + "\\n")
assert args[0] == "exec", args
i = 1
while args[i].startswith("-"):
    i += 2 if args[i] in ("--bind", "-B") else 1
command = args[i + 1:]
if command[0] == "python":
    command[0] = {python!r}
os.execv(command[0], command)
"""


def stand_in_apptainer(tmp_path: Path) -> tuple[Path, Path]:
    """(the stand-in script, the JSON-lines file where each call records its argv and rank)."""
    calls = tmp_path / "apptainer-calls.jsonl"
    script = tmp_path / "bin" / "apptainer"
    script.parent.mkdir(exist_ok=True)
    script.write_text(STAND_IN_APPTAINER.format(python=sys.executable, log=str(calls)))
    script.chmod(0o755)
    return script, calls
