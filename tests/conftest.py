"""Shared test helpers: running the CLI for real, making small image files, the real-data path."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KERMANY = REPO.parent / "shared" / "data" / "kermany-cxr"


def pytest_configure(config):
    """Under xdist each worker shares the machine with the others: torch in the test process gets one
    thread (two spinning threads per worker on 2 cores made an in-process 6 s test take 200 s)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def run_cli(
    *args: str | Path, timeout: float = 600, check: bool = True, threads: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:  # fmt: skip
    """`python -m hpcgan ARGS` in a fresh process, as a user would run it (`threads`: OMP_NUM_THREADS;
    `env`: variables set on top of ours)."""
    env = dict(os.environ, COLUMNS="200", **({"OMP_NUM_THREADS": str(threads)} if threads else {}), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "hpcgan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hpcgan {args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def kill_after_shards(*args: str | Path, out: Path, at_least: int, timeout: float = 300) -> int:
    """Start `hpcgan ARGS`, SIGKILL it once `out` holds `at_least` complete shards, and return how
    many it held: an interrupted run, as a node failure or an OOM kill leaves it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpcgan", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + timeout
    while len(list(out.glob("*.tar"))) < at_least and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(list(out.glob("*.tar")))


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user error: exit 2, no traceback, one line naming what was wrong."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def make_image(path: Path, width: int, height: int, mode: str = "L", seed: int = 0) -> Path:
    """A smooth random-ish picture, saved in the format the suffix names."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    base = 0.5 + 0.3 * np.sin(6 * x + rng.uniform(0, 6)) * np.cos(4 * y) + 0.1 * rng.standard_normal((height, width))
    gray = np.clip(base * 255, 0, 255).astype(np.uint8)
    img = Image.fromarray(gray, "L")
    if mode != "L":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def file_digests(folder: Path, pattern: str = "*.tar") -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))}


TINY32 = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=16", "train.num_workers=0"]


def tiny_trained_run(root: Path) -> tuple[Path, Path]:
    """(shards, run): 144 phantoms at 32 px (10% val) and a narrow dcgan64 trained 30 steps on them,
    checkpoints at 10, 20 and 30 (for the evaluation, memorisation and eval-job tests)."""
    shards = root / "ph32"
    run_cli("phantom", shards, "--n", "144", "--size", "32", "--shard-size", "64", "--val-fraction", "0.1")
    run_cli("train", "--gan", "dcgan64", "--data", shards, "--run-dir", root / "run", *TINY32, "train.steps=30",
            "checkpoint.every=10", threads=1)  # fmt: skip
    return shards, root / "run"


@pytest.fixture(scope="session")
def kermany() -> Path:
    if not (KERMANY / "chest_xray").is_dir():
        pytest.skip(f"real data not present at {KERMANY}")
    return KERMANY


@pytest.fixture(scope="module")
def slurm():
    """The local SLURM cluster's client environment, set for the module (skip or fail without it).

    One module at a time has the cluster: the preemption tests send high-priority jobs that would
    also preempt another module's jobs (xdist runs modules side by side), and those tests count
    their job's starts and stops. Tests without SLURM go on in parallel meanwhile."""
    import fcntl
    import tempfile

    from tests.slurm_cluster import cluster_env

    env = cluster_env()
    with open(Path(tempfile.gettempdir()) / "hpcgan-tests-slurm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLURM_CONF", env["SLURM_CONF"])
            yield env


@pytest.fixture(scope="module")
def ph64(tmp_path_factory):
    """Phantom shards at 64 px for the jobs on the local cluster (on a path every node sees)."""
    out = tmp_path_factory.mktemp("slurm-ph") / "ph64"
    run_cli("phantom", out, "--n", "512", "--size", "64", "--shard-size", "128", "--workers", "2")
    return out
