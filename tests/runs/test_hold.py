"""hpcgan/runs/hold.py: one job at a time per run dir, with real processes as holders."""

import json
import os
import subprocess
import sys

import pytest

from hpcgan.errors import UserError
from hpcgan.runs.hold import HOLD_NAME, acquire, check_not_held, read_hold, release


@pytest.fixture
def no_slurm_job(monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)


def _write_hold(run, **holder):
    run.mkdir(exist_ok=True)
    (run / HOLD_NAME).write_text(json.dumps(holder))


def test_a_first_hold_records_this_process_and_release_removes_it(tmp_path, no_slurm_job):
    run = tmp_path / "run"
    run.mkdir()
    assert acquire(run) is None
    hold = read_hold(run)
    assert hold["pid"] == os.getpid() and hold["host"] == os.uname().nodename and hold["job_id"] is None
    release(run)
    assert read_hold(run) is None


def test_a_live_process_keeps_its_hold(tmp_path, no_slurm_job):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_hold(run, job_id=None, host=os.uname().nodename, pid=holder.pid, since=0)
        with pytest.raises(UserError, match=f"held by pid {holder.pid}"):
            acquire(run)
        assert read_hold(run)["pid"] == holder.pid  # the refused job changed nothing
    finally:
        holder.kill()
        holder.wait()


def test_the_hold_of_a_dead_process_is_taken_over_and_returned(tmp_path, no_slurm_job):
    run = tmp_path / "run"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_hold(run, job_id=None, host=os.uname().nodename, pid=dead.pid, since=0)
    stale = acquire(run)
    assert stale is not None and stale["pid"] == dead.pid
    assert read_hold(run)["pid"] == os.getpid()


def test_a_requeued_job_takes_its_own_hold_back(tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    _write_hold(run, job_id="4242", host="another-node", pid=1, since=0)  # the job's previous incarnation
    assert acquire(run) is None  # not a takeover: it was ours
    assert read_hold(run)["job_id"] == "4242" and read_hold(run)["pid"] == os.getpid()


def test_a_holder_on_another_host_counts_as_alive(tmp_path, no_slurm_job):
    run = tmp_path / "run"
    _write_hold(run, job_id=None, host="elsewhere", pid=12345, since=0)
    with pytest.raises(UserError, match="another host"):
        check_not_held(run)


def test_an_unreadable_hold_is_one_line_and_left_in_place(tmp_path, no_slurm_job):
    run = tmp_path / "run"
    run.mkdir()
    (run / HOLD_NAME).write_text("{not json")
    with pytest.raises(UserError, match="unreadable hold") as err:
        acquire(run)
    assert "\n" not in str(err.value)
    assert (run / HOLD_NAME).read_text() == "{not json"


def test_release_leaves_another_process_hold_alone(tmp_path, no_slurm_job):
    run = tmp_path / "run"
    _write_hold(run, job_id=None, host=os.uname().nodename, pid=os.getppid(), since=0)
    release(run)
    assert read_hold(run)["pid"] == os.getppid()
