"""The launch layer without SLURM: sweep files, --dry-run, bad input before submission, run-dir
holds, `hpcgan status`, and a real 2-rank job through submitit's local executor."""

import json
import os
import subprocess
import sys
import time

import pytest

from hpcgan.errors import UserError
from hpcgan.launch.sweep import load_sweep
from tests.conftest import REPO, assert_one_line_error, run_cli

TINY32 = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=8", "train.num_workers=0"]


@pytest.fixture(scope="module")
def phantoms32(tmp_path_factory):
    out = tmp_path_factory.mktemp("ph32") / "shards"
    run_cli("phantom", out, "--n", "128", "--size", "32", "--shard-size", "64", "--workers", "2")
    return out


def test_a_grid_sweep_expands_to_every_combination_with_readable_names(tmp_path):
    path = tmp_path / "lr.toml"
    path.write_text('gan = "dcgan64"\n[base]\n"train.steps" = 5\n[grid]\n"optim.lr_g" = [1e-4, 2e-4]\nseed = [0, 1]\n')
    sweep = load_sweep(path)
    assert sweep.name == "lr" and sweep.gan == "dcgan64" and len(sweep.elements) == 4
    assert sweep.elements[0].name == "000-lr_g=0.0001-seed=0"
    assert sweep.elements[3].overrides == ["train.steps=5", "optim.lr_g=0.0002", "seed=1"]
    path.write_text('[[runs]]\nseed = 3\n[[runs]]\n"loss.kind" = "hinge"\n')
    assert [e.overrides for e in load_sweep(path).elements] == [["seed=3"], ["loss.kind=hinge"]]
    for bad, words in (("[grid]\nseed = 3\n", "non-empty list"), ("x = 1\n[grid]\nseed=[1]\n", "unknown key"),
                       ("[grid\n", "not valid TOML"), ("gan = 'x'\n", "exactly one of")):  # fmt: skip
        path.write_text(bad)
        with pytest.raises(UserError, match=words):
            load_sweep(path)


def test_dry_run_prints_the_sbatch_script_and_config_and_submits_nothing(phantoms32, tmp_path):
    run_dir = tmp_path / "runs" / "dry"
    proc = run_cli("submit", "--gan", "dcgan64", "--data", phantoms32, "--run-dir", run_dir, "--cluster", "slurm",
                   "--nodes", "1", "--tasks-per-node", "2", "--time", "7", "--signal-delay", "25", "--dry-run",
                   *TINY32, check=False) if _have_slurm() else None  # fmt: skip
    if proc is not None:
        assert proc.returncode == 0, proc.stderr
        for line in ("--ntasks-per-node=2", "--signal=USR2@25", "--time=7", "--requeue"):
            assert f"#SBATCH {line}" in proc.stdout + proc.stderr
    proc = run_cli("submit", "--gan", "dcgan64", "--data", phantoms32, "--run-dir", run_dir, "--cluster", "local",
                   "--dry-run", *TINY32)  # fmt: skip
    assert '"resolution": 32' in proc.stdout + proc.stderr
    assert not run_dir.exists()  # nothing written, nothing submitted


def _have_slurm() -> bool:
    from hpcgan.launch import slurm_info

    return slurm_info.available() and subprocess.run(["sinfo"], capture_output=True).returncode == 0


def test_a_run_started_with_train_continues_as_a_submitted_job(phantoms32, tmp_path):
    """`hpcgan train` builds its config from the preset (optim.finetune_from is the int 0 there); a
    submitted job rebuilds it from the saved dict (0.0), which hashes apart: the job must still resume."""
    run_dir = tmp_path / "run"
    run_cli("train", "--gan", "dcgan64", "--data", phantoms32, "--run-dir", run_dir, *TINY32, "train.steps=3",
            threads=1)  # fmt: skip
    run_cli("submit", "--cluster", "local", "--gan", "dcgan64", "--data", phantoms32, "--run-dir", run_dir,
            "--time", "5", *TINY32, "train.steps=6", threads=1)  # fmt: skip
    done = run_dir / "checkpoints" / "step-0000006.json"
    deadline = time.time() + 240
    while not done.exists() and time.time() < deadline:
        time.sleep(1)
    starts = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    starts = [e for e in starts if e["event"] == "start"]
    assert done.exists(), "".join(log.read_text()[-400:] for log in (run_dir / "slurm").glob("*.err"))
    assert [e["step"] for e in starts] == [0, 3]  # resumed at step 3, not refused nor restarted


def test_bad_submissions_fail_in_one_line_before_anything_is_submitted(phantoms32, tmp_path):
    base = ["submit", "--cluster", "local", "--run-dir", tmp_path / "r", *TINY32]
    cases = [
        (["--gan", "dcgan64", "--data", tmp_path / "missing"], "--data", "no index.json"),
        (["--gan", "stylegan9", "--data", phantoms32], "--gan stylegan9: unknown preset"),
        (["--gan", "dcgan64", "--data", phantoms32, "--nodes", "2"], "--nodes 2"),
        (["--gan", "dcgan64", "--data", phantoms32, "--cluster", "mars"], "--cluster mars"),
        (["--gan", "dcgan64", "--data", phantoms32, "--sweep", tmp_path / "none.toml"], "no such file"),
        (["--gan", "dcgan64", "--data", phantoms32, "--run-dir", "/proc/1/hpcgan"], "not writable"),
    ]
    for args, *words in cases:
        proc = run_cli(*base, *args, check=False)
        assert_one_line_error(proc, *words)
    assert not (tmp_path / "r").exists()


def test_a_second_job_on_a_held_run_dir_is_refused_and_a_stale_hold_is_taken_over(phantoms32, tmp_path):
    run_dir = tmp_path / "held"
    cmd = [sys.executable, "-m", "hpcgan", "train", "--gan", "dcgan64", "--data", str(phantoms32), "--run-dir",
           str(run_dir), *TINY32, "train.steps=100000", "checkpoint.every=0"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (run_dir / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = run_cli("train", "--gan", "dcgan64", "--data", phantoms32, "--run-dir", run_dir, *TINY32,
                         "train.steps=3", check=False)  # fmt: skip
        assert_one_line_error(second, f"held by pid {first.pid}")
    finally:
        first.kill()
        first.wait()
    taken = run_cli("train", "--gan", "dcgan64", "--data", phantoms32, "--run-dir", run_dir, *TINY32,
                    "train.steps=3", "--resume", "none")  # fmt: skip
    assert "took over the hold of a dead job" in taken.stderr
    assert not (run_dir / "HOLD.json").exists()  # released at completion


def test_a_usr2_checkpoints_at_the_next_step_and_exits_for_requeue(phantoms32, tmp_path):
    run_dir = tmp_path / "usr2"
    cmd = [sys.executable, "-m", "hpcgan.train", "--gan", "dcgan64", "--data", str(phantoms32), "--run-dir",
           str(run_dir), *TINY32, "train.steps=100000", "checkpoint.every=0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.time() + 60
    while not (run_dir / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(__import__("signal").SIGUSR2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err  # REQUEUE_EXIT_CODE
    stopped = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["signal"] == "SIGUSR2"
    assert (run_dir / "checkpoints" / f"step-{stopped['step']:07d}.json").exists()
    assert f"stopped by SIGUSR2 at step {stopped['step']}" in err


def test_local_submission_runs_two_ranks_and_status_reports_it(phantoms32, tmp_path):
    runs = tmp_path / "runs"
    sweep = tmp_path / "pair.toml"
    sweep.write_text('[base]\n"train.steps" = 6\n[grid]\nseed = [0, 1]\n')
    proc = run_cli("submit", "--cluster", "local", "--gan", "dcgan64", "--data", phantoms32, "--sweep", sweep,
                   "--run-dir", runs / "pair", "--tasks-per-node", "2", "--time", "5", *TINY32)  # fmt: skip
    assert proc.stderr.count("submitted job") == 2
    deadline = time.time() + 240
    done = lambda: all((runs / "pair" / n / "checkpoints" / "step-0000006.json").exists()
                       for n in ("000-seed=0", "001-seed=1"))  # fmt: skip
    while not done() and time.time() < deadline:
        time.sleep(1)
    assert done()
    time.sleep(1)  # the completion event follows the last checkpoint
    status = run_cli("status", runs, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("COMPLETED") == 2 and "6/6" in status.stdout
    state = __import__("torch").load(runs / "pair" / "000-seed=0" / "checkpoints" / "step-0000006.pt",
                                     weights_only=True)  # fmt: skip
    assert state["world_size"] == 2
    completed = json.loads((runs / "pair" / "000-seed=0" / "events.jsonl").read_text().splitlines()[-1])
    assert completed["event"] == "completed" and completed["param_digests"][0] == completed["param_digests"][1]
    assert "seed=1" in json.loads((runs / "pair" / "001-seed=1" / "job.json").read_text())["overrides"]
