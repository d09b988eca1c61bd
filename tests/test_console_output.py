"""What users copy from captured output (a log file, a pipe): paths on one line, and a dry run that
works off-cluster."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, TINY32, run_cli


def captured(*args: str | Path, path: str | None = None) -> subprocess.CompletedProcess:
    """`python -m ARGS` with output to a pipe and no COLUMNS: rich then assumes 80 columns."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)  # fmt: skip


def test_long_paths_printed_by_train_are_never_wrapped(tmp_path):
    shards = tmp_path / "ph32"
    run_cli("phantom", shards, "--n", "64", "--size", "32")
    run_dir = tmp_path / ("a-run-dir-name-long-enough-to-pass-eighty-columns-" * 2)
    proc = captured("hpcgan", "train", "--gan", "dcgan64", "--data", shards, "--run-dir", run_dir, *TINY32,
                    "train.steps=2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"samples and checkpoints in {run_dir}" in proc.stderr.replace("\r", ""), proc.stderr
    assert any(str(run_dir) in line for line in proc.stderr.splitlines()[:3]), proc.stderr  # the header line


def test_dry_run_without_sbatch_prints_the_script_and_says_it_was_not_checked(tmp_path):
    shards = tmp_path / "ph32"
    run_cli("phantom", shards, "--n", "64", "--size", "32")
    no_slurm = tmp_path / "bin"  # a PATH without sbatch or srun (python runs by its full path)
    no_slurm.mkdir()
    proc = captured("hpcgan.submit", "--gan", "dcgan64", "--data", shards, "--nodes", "4", "--dry-run",
                    "--run-dir", tmp_path / "run", "model.resolution=32", path=str(no_slurm))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --nodes=4" in proc.stderr and "\nsrun " in proc.stderr
    assert "not checked against a cluster" in proc.stderr
    assert not (tmp_path / "run").exists()  # a dry run leaves nothing behind
    real = captured("hpcgan.submit", "--gan", "dcgan64", "--data", shards, "--nodes", "4", "--cluster", "slurm",
                    "--run-dir", tmp_path / "run", "model.resolution=32", path=str(no_slurm))  # fmt: skip
    assert real.returncode != 0 and real.stderr.strip().splitlines() == [
        "hpcgan submit: error: --cluster slurm: sbatch is not on PATH (is this a SLURM login node?)"
    ]
