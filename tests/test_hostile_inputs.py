"""Hostile inputs (issue 13), as tables: each row is one case, so adding a case is one line.

Every case ends in one of: a one-line error (exit 2, no traceback), or a skip that is counted;
and whatever was committed before (shards, checkpoints, holds) is intact afterwards. Processes are
real: the CLI in a fresh interpreter, concurrent writers as concurrent processes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, run_cli

TINY32 = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=16", "train.num_workers=0"]


@pytest.fixture(scope="module")
def ph32(tmp_path_factory) -> Path:
    """128 phantoms at 32 px in 2 shards of 64: a valid set, so a case fails for its own reason only."""
    out = tmp_path_factory.mktemp("hostile") / "ph32"
    run_cli("phantom", out, "--n", "128", "--size", "32", "--shard-size", "64", "--workers", "1")
    return out


# -- 1. the sbatch script: no injection, sizes and counts checked, paths inside their roots ----------

INJECTION = "s'\ntouch pwned #"  # the example: the newline ends the #SBATCH comment line

SUBMIT_CASES = [  # (case, extra args, fragments of the one error line)
    ("name-newline", ["--name", INJECTION], ["--name", "control character"]),
    ("name-cr", ["--name", "a\rb"], ["--name", "control character"]),
    ("name-nul-escape", ["--name", "a\x1bb"], ["--name", "control character"]),
    ("name-escapes", ["--name", "../../x"], ["--name", "plain name"]),
    ("name-dotdot", ["--name", ".."], ["--name", "plain name"]),
    ("name-absolute", ["--name", "/tmp/x"], ["--name", "plain name"]),
    ("account-newline", ["--account", "acct\nrm -rf ~"], ["--account", "control character"]),
    ("qos-newline", ["--qos", "normal\nid"], ["--qos", "control character"]),
    ("constraint-tab", ["--constraint", "a\tb"], ["--constraint", "control character"]),
    ("partition-newline", ["--partition", "gpu\nid"], ["--partition", "control character"]),
    ("run-dir-newline", ["--run-dir", "runs/a\nid #"], ["--run-dir", "control character"]),
    ("mem-words", ["--mem", "lots"], ["--mem lots", "SLURM size"]),
    ("mem-newline", ["--mem", "4G\nid"], ["--mem", "control character"]),
    ("mem-negative", ["--mem=-1G"], ["--mem -1G", "SLURM size"]),
    ("gpus-negative", ["--gpus-per-node", "-1"], ["--gpus-per-node -1", "0"]),
    ("cpus-negative", ["--cpus-per-task", "-2"], ["--cpus-per-task -2", "at least 1"]),
    ("cpus-zero", ["--cpus-per-task", "0"], ["--cpus-per-task 0", "at least 1"]),
    ("threads-zero", ["--threads", "0"], ["--threads 0", "at least 1"]),
    ("array-parallelism-zero", ["--array-parallelism", "0"], ["--array-parallelism 0", "at least 1"]),
]

SWEEP_CASES = [  # (case, sweep file text, fragments of the one error line)
    ("sweep-name-newline", 'name = "s\'\\ntouch pwned #"\n[grid]\nseed = [0]\n', ["name", "control character"]),
    ("sweep-name-escapes", 'name = "../../escape"\n[grid]\nseed = [0]\n', ["name", "plain name"]),
    ("sweep-name-absolute", 'name = "/tmp/escape"\n[grid]\nseed = [0]\n', ["name", "plain name"]),
    ("sweep-name-not-text", "name = 5\n[grid]\nseed = [0]\n", ["name must be a string"]),
    ("sweep-data-not-text", "data = 5\n[grid]\nseed = [0]\n", ["data must be a string"]),
]


@pytest.mark.parametrize(("case", "args", "words"), SUBMIT_CASES, ids=[c[0] for c in SUBMIT_CASES])
def test_submit_refuses_in_one_line(ph32, tmp_path, case, args, words):
    run_dir = tmp_path / "runs" / "r"
    base = ["--gan", "dcgan64", "--data", ph32, "--cluster", "local", "--dry-run", *TINY32]
    if "--run-dir" not in args:
        base += ["--run-dir", run_dir]
    assert_one_line_error(run_cli("submit", *base, *args, check=False), *words)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize(("case", "text", "words"), SWEEP_CASES, ids=[c[0] for c in SWEEP_CASES])
def test_sweep_files_are_refused_in_one_line(ph32, tmp_path, case, text, words):
    sweep = tmp_path / "sweeps" / "s.toml"
    sweep.parent.mkdir()
    sweep.write_text(text)
    proc = run_cli("submit", "--sweep", sweep, "--gan", "dcgan64", "--data", ph32, "--cluster", "local",
                   "--dry-run", *TINY32, check=False)  # fmt: skip
    assert_one_line_error(proc, *words)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["s.toml", "sweeps"]


def _script(stderr: str) -> str:
    """The sbatch script a dry run printed (it ends before the first '# RUN_DIR: overrides' line)."""
    return stderr.split("\n# /", 1)[0]


@pytest.mark.skipif(subprocess.run(["which", "sbatch"], capture_output=True).returncode != 0, reason="no sbatch")
def test_dry_run_prints_the_script_verbatim_to_a_pipe_and_odd_names_stay_quoted(ph32, tmp_path):
    # Quotes, $() and spaces are legal in a name: they must come out quoted, never run.
    name = "a b$(touch pwned)'q`id`"
    run_dir = tmp_path / ("long-" + "x" * 120) / name
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # a pipe, no terminal width
    proc = subprocess.run(
        [sys.executable, "-m", "hpcgan", "submit", "--gan", "dcgan64", "--data", str(ph32), "--cluster", "slurm",
         "--run-dir", str(run_dir), "--dry-run", *TINY32],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    script = _script(proc.stderr)
    output = f"#SBATCH --output={shlex.quote(str(run_dir / 'slurm' / '%j_0_log.out'))}"
    assert output in script.splitlines(), script  # one line, not wrapped at 80 columns
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    # Run the script's non-SLURM lines with srun and python replaced by echo: nothing of the name runs.
    runnable = script.replace("srun ", "echo ").replace("export SUBMITIT_EXECUTOR=slurm", "")
    subprocess.run(["bash", "-c", runnable], cwd=tmp_path, capture_output=True, timeout=30)
    assert not (tmp_path / "pwned").exists()
    assert not run_dir.exists()
