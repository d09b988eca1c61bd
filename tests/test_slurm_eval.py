"""`python -m hpcgan.submit --eval RUN` on the real local SLURM cluster: one array element per
checkpoint, each a 2-node job whose FID equals a local 1-process `hpcgan eval`; a preempted element
is requeued and evaluates again to the same result; bad submissions fail in one line; --dry-run
lists the checkpoints and leaves no trace."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from hpcgan.launch.eval_job import EvalJob
from tests.conftest import REPO, assert_one_line_error, run_cli, tiny_trained_run
from tests.slurm_cluster import node_of, sh, wait_for, wait_for_state

# 144 images at 32 px: 128 real train images on 1 rank and on 2 (64 each), so both see the same set.
CHECKPOINTS = ["step-0000010.pt", "step-0000020.pt", "step-0000030.pt"]


@pytest.fixture(scope="module")
def trained(slurm, tmp_path_factory):
    """A run with 3 checkpoints, and RUN/../reference: a copy of it evaluated by `hpcgan eval` for the
    first checkpoint, which caches the real statistics, so the array's elements all read them rather
    than each computing them at once."""
    root = tmp_path_factory.mktemp("slurm-eval")  # /tmp: every node of the local cluster sees it
    tiny_trained_run(root)
    first = local_eval(copy_run(root / "run", root / "reference"), CHECKPOINTS[0])
    assert first.wait(timeout=300) == 0, first.stderr.read()
    return root / "run"


def evals(run_dir):
    path = run_dir / "eval.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def local_eval(run_dir, checkpoint, n: int = 200) -> subprocess.Popen:
    """`hpcgan eval RUN --checkpoints FILE --n N` in one process, started (run_cli would wait)."""
    cmd = [sys.executable, "-m", "hpcgan", "eval", str(run_dir), "--checkpoints", checkpoint, "--n", str(n)]
    return subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def copy_run(run_dir, to, checkpoints: bool = True):
    to.mkdir()
    shutil.copy(run_dir / "config.json", to)
    if checkpoints:
        shutil.copytree(run_dir / "checkpoints", to / "checkpoints")
    return to


def test_each_checkpoint_is_one_array_element_on_two_nodes_with_the_local_fid(trained, tmp_path):
    local = trained.parent / "reference"  # `hpcgan eval` in one process, on a copy: its own eval.jsonl
    proc = run_cli("submit", "--eval", trained, "--cluster", "slurm", "--nodes", "2", "--tasks-per-node", "1",
                   "--time", "5", "--checkpoints", "all", "--n", "200", threads=1)  # fmt: skip
    print(proc.stderr)
    jobs = [line.split()[2].rstrip(":") for line in proc.stderr.splitlines() if line.startswith("submitted job")]
    assert len(jobs) == 3 and len({j.split("_")[0] for j in jobs}) == 1  # one array
    assert "one array element per checkpoint: " + " ".join(CHECKPOINTS) in proc.stderr
    assert f"results: {trained / 'eval.jsonl'}" in proc.stderr
    rest = [local_eval(local, c) for c in CHECKPOINTS[1:]]  # meanwhile, the other references
    assert all(p.wait(timeout=300) == 0 for p in rest), [p.stderr.read() for p in rest]
    wait_for(lambda: len(evals(trained)) == 3, 240, "3 lines in eval.jsonl")
    for job in jobs:
        wait_for_state(job, "COMPLETED")
    results = sorted(evals(trained), key=lambda r: r["step"])
    assert [r["step"] for r in results] == [10, 20, 30] and [r["checkpoint"] for r in results] == CHECKPOINTS
    assert all(r["world_size"] == 2 and (r["n_real"], r["n_fake"]) == (128, 200) for r in results)
    reference = {r["checkpoint"]: r for r in evals(local)}
    assert all(reference[c]["world_size"] == 1 for c in CHECKPOINTS)
    for r in results:
        assert r["fid"] == pytest.approx(reference[r["checkpoint"]]["fid"], rel=1e-6)
    record = json.loads((trained / "eval-job.json").read_text())
    assert record["job_ids"] == dict(zip(CHECKPOINTS, jobs, strict=True))
    assert not (trained / "job.json").exists()  # the training run's job record is not the eval's


def test_an_eval_job_requeues_itself_unchanged():
    job = EvalJob("/runs/a", "step-0000030.pt", 200, "train", "random", None)
    again = job.checkpoint()  # what submitit pickles for the requeued job on USR2
    assert isinstance(again.function, EvalJob) and vars(again.function) == vars(job)


def test_a_preempted_element_is_requeued_and_evaluates_to_the_same_fid(trained, tmp_path):
    run, local = copy_run(trained, tmp_path / "preempted"), copy_run(trained, tmp_path / "reference")
    n = 20000  # ~10 s of generating: still running when the preemption comes
    proc = run_cli("submit", "--eval", run, "--cluster", "slurm", "--nodes", "2", "--time", "10", "--checkpoints",
                   "latest", "--n", n, threads=1)  # fmt: skip
    job = next(line for line in proc.stderr.splitlines() if line.startswith("submitted job")).split()[2].rstrip(":")
    log, log1 = (run / "eval-slurm" / f"{job}_{rank}_log.out" for rank in (0, 1))
    wait_for(lambda: all(f.is_file() and "Starting with" in f.read_text() for f in (log, log1)), 120,
             "both ranks to start")  # fmt: skip
    time.sleep(1)  # submitit installs its USR2 handler just after that line, once it has read the job's pickle
    first_node = sh("scontrol", "show", "hostnames", node_of(job)).split()[0]
    # A high-priority job that needs that whole node: partition_prio preemption sends USR2 and requeues.
    sh("sbatch", "--parsable", "-p", "high", "-w", first_node, "-N", "1", "-n", "2", "-o", "/dev/null", "--wrap",
       "sleep 5")  # fmt: skip
    reference = local_eval(local, CHECKPOINTS[-1], n)  # meanwhile
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    wait_for(lambda: evals(run), 240, "the requeued element's line in eval.jsonl")
    wait_for_state(job, "COMPLETED")
    text = log.read_text()
    assert "Calling checkpoint method" in text and f"Requeued job {job}" in text and text.count("Starting with") == 2
    [result] = evals(run)
    assert (result["step"], result["world_size"], result["n_fake"]) == (30, 2, n)
    assert result["fid"] == pytest.approx(evals(local)[0]["fid"], rel=1e-6)


def test_eval_submissions_check_first_and_fail_in_one_line(trained, tmp_path):
    base = ["submit", "--cluster", "slurm", "--nodes", "2", "--time", "5"]
    assert_one_line_error(run_cli(*base, "--eval", trained, "--gan", "dcgan64", check=False), "--eval", "--gan")
    untrained = copy_run(trained, tmp_path / "untrained", checkpoints=False)
    assert_one_line_error(run_cli(*base, "--eval", untrained, check=False), "no committed checkpoint")
    run = copy_run(trained, tmp_path / "dry")  # never submitted to, whatever the test order
    dry = run_cli(*base, "--eval", run, "--dry-run")
    assert "#SBATCH --nodes=2" in dry.stderr and "#SBATCH --array=0-2%3" in dry.stderr
    assert "one array element per checkpoint: " + " ".join(CHECKPOINTS) in dry.stderr
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json"]  # no eval-slurm, no record
