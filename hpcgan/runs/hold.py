"""One job at a time per run directory.

The job that trains a run holds it through `RUN/HOLD.json` (its SLURM job id, host and pid). A
second job on a held run dir is refused with the holder's job id while the holder is alive; a hold
left by a dead job (crashed, cancelled, node lost) is taken over. A requeued job keeps its job id,
so it takes its own hold back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from hpcgan.atomic import write_json
from hpcgan.errors import UserError
from hpcgan.file_lock import LockHeld, LockUnsupported, exclusive_lock

HOLD_NAME = "HOLD.json"
HOLD_LOCK_NAME = ".HOLD.lock"  # held only while the hold is checked and replaced
LOCK_WAIT_S = 120.0  # the holder may be asking squeue (30 s timeout) while it holds the lock
# squeue states of a job that still owns its run dir (a requeued job passes through these).
LIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
               "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "PREEMPTED"}  # fmt: skip


def current_job_id() -> str | None:
    """This process's SLURM job id; array tasks as ARRAYJOB_TASK, the id scontrol and squeue accept."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def slurm_job_state(job_id: str) -> str | None:
    """The job's state from squeue; None when SLURM no longer knows it; UNKNOWN when squeue
    could not answer (a busy controller): then the holder counts as alive."""
    if shutil.which("squeue") is None:
        return "UNKNOWN"
    try:
        proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "UNKNOWN"
    if proc.returncode != 0:
        return None if "Invalid job id" in proc.stderr else "UNKNOWN"
    states = proc.stdout.split()
    return states[0] if states else None


def _alive(holder: dict[str, Any]) -> tuple[bool, str]:
    job = holder.get("job_id")
    if job:
        state = slurm_job_state(str(job))
        return state in LIVE_STATES or state == "UNKNOWN", f"job {job} ({state or 'gone'})"
    pid, host = holder.get("pid"), holder.get("host")
    if host != os.uname().nodename or not isinstance(pid, int):
        return True, f"pid {pid} on {host} (another host: cannot check, remove {HOLD_NAME} if it is dead)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, f"pid {pid} (gone)"
    except PermissionError:
        pass
    return True, f"pid {pid} on {host}"


def read_hold(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(run_dir) / HOLD_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def check_not_held(run_dir: Path) -> None:
    """Raise if a live job other than this one holds `run_dir`."""
    holder = read_hold(run_dir)
    if holder is None:
        return
    me = current_job_id()
    if me is not None and holder.get("job_id") == me:
        return  # our own hold, from before a requeue
    if holder.get("job_id") is None and holder.get("pid") == os.getpid():
        return
    alive, who = _alive(holder)
    if alive:
        raise UserError(f"{run_dir}: held by {who}; wait for it, cancel it, or use another --run-dir")


def acquire(run_dir: Path) -> dict[str, Any] | None:
    """Take the hold (refusing a live holder); returns the stale hold taken over, if any.

    The check and the replacement happen under a lock on RUN/.HOLD.lock: of two jobs that find the
    same dead holder at once, the second sees the first's fresh hold and is refused."""
    try:
        with exclusive_lock(Path(run_dir) / HOLD_LOCK_NAME, timeout=LOCK_WAIT_S):
            return _take(run_dir)
    except LockHeld:
        raise UserError(f"{run_dir}: another job is taking the hold right now; use another --run-dir") from None
    except LockUnsupported as exc:
        # Without locks only a first hold is exclusive (link() below); a takeover may race.
        warnings.warn(f"{exc.strerror}; taking the hold without a lock", stacklevel=2)
        return _take(run_dir)
    except OSError as exc:
        raise UserError(f"{run_dir}: cannot take the hold ({exc.strerror or exc})") from None


def _take(run_dir: Path) -> dict[str, Any] | None:
    check_not_held(run_dir)
    stale = read_hold(run_dir)
    path = Path(run_dir) / HOLD_NAME
    me = {"job_id": current_job_id(), "host": os.uname().nodename, "pid": os.getpid(), "since": time.time()}
    if stale is None:
        if path.exists():
            raise UserError(f"{path}: unreadable hold; remove it if no job is training in {run_dir}")
        # Created with link(): of two jobs starting at once, exactly one gets the file, lock or not.
        tmp = path.with_name(f".{HOLD_NAME}.{os.getpid()}")
        write_json(tmp, me)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise UserError(f"{run_dir}: another job took the hold just now; use another --run-dir") from None
        finally:
            tmp.unlink(missing_ok=True)
        return None
    write_json(path, me)  # replacing our own hold, or a dead job's (under the lock: one job gets here)
    mine = stale.get("job_id") is not None and stale.get("job_id") == me["job_id"]
    return None if mine else stale


def release(run_dir: Path) -> None:
    try:
        with exclusive_lock(Path(run_dir) / HOLD_LOCK_NAME, timeout=LOCK_WAIT_S):
            _drop(run_dir)
    except LockHeld:
        pass  # someone is checking our hold; it stays, and reads as ours until this process ends
    except LockUnsupported:
        _drop(run_dir)


def _drop(run_dir: Path) -> None:
    holder = read_hold(run_dir)
    if holder is not None and holder.get("pid") == os.getpid():
        (Path(run_dir) / HOLD_NAME).unlink(missing_ok=True)
