"""Training on the real local SLURM cluster: a 2-node x 2-task job, a real preemption ending
bit-identical to an uninterrupted run, `scontrol requeue` and `scancel`, and resuming a 4-rank run
on 2 ranks. (Time limits and array sweeps: test_slurm_sweeps.py, so the two files run at once.)"""

from tests.conftest import assert_one_line_error, run_cli
from tests.slurm_cluster import (
    TINY,
    completed,
    events,
    final_state,
    job_state,
    last_step,
    node_of,
    sh,
    submit,
    wait_for,
    wait_for_state,
)
from tests.test_train import assert_identical


def test_two_nodes_by_two_tasks_train_as_four_identical_ranks(slurm, ph64, tmp_path):
    run_dir = tmp_path / "multi"
    job = submit("--gan", "dcgan64", "--data", ph64, "--run-dir", run_dir, "--nodes", "2", "--tasks-per-node",
                 "2", "--time", "5", *TINY, "train.steps=12")  # fmt: skip
    wait_for(lambda: completed(run_dir), 240, "the 4-rank job to finish")
    start, *_, done = events(run_dir)
    assert start["world_size"] == 4 and start["job_id"] == job
    assert len(done["param_digests"]) == 4 and all(d == done["param_digests"][0] for d in done["param_digests"])
    assert final_state(run_dir, 12)["world_size"] == 4
    wait_for_state(job, "COMPLETED")
    status = run_cli("status", run_dir)
    assert "COMPLETED" in status.stdout and "12/12" in status.stdout


def test_a_preempted_job_checkpoints_requeues_resumes_and_ends_bit_identical(slurm, ph64, tmp_path):
    steps = ["train.steps=1500", "checkpoint.every=500"]
    preempted = tmp_path / "preempted"
    job = submit("--gan", "dcgan64", "--data", ph64, "--run-dir", preempted, "--time", "10", "--signal-delay", "20",
                 *TINY, *steps)  # fmt: skip
    node = node_of(job)
    wait_for(lambda: last_step(preempted) >= 100, 120, "the job to pass step 100")
    # A high-priority job that needs the whole node: partition_prio preemption requeues ours.
    high = sh("sbatch", "--parsable", "-p", "high", "-w", node, "-N", "1", "-n", "2", "-o", "/dev/null", "--wrap",
              "sleep 8").strip()  # fmt: skip
    # The reference, never interrupted, in this process's environment (one thread, as in the job).
    reference = tmp_path / "reference"
    run_cli("train", "--gan", "dcgan64", "--data", ph64, "--run-dir", reference, *TINY, *steps, threads=1)
    wait_for(lambda: completed(preempted), 300, "the preempted job to finish")
    timeline = events(preempted)
    stops = [e for e in timeline if e["event"] == "stopped"]
    starts = [e for e in timeline if e["event"] == "start"]
    assert stops and stops[0]["signal"] == "SIGUSR2" and 0 < stops[0]["step"] < 1500
    assert starts[1]["step"] == stops[0]["step"] and starts[1]["restart_count"] >= 1
    assert_identical(final_state(reference, 1500), final_state(preempted, 1500))
    assert job_state(high) in ("COMPLETED", "RUNNING")
    print("preemption timeline:", [(e["event"], e["step"], e.get("signal"), e.get("restart_count")) for e in timeline])


def test_a_preempted_r3gan256_run_with_ada_ends_bit_identical(slurm, tmp_path):
    """The new default family at 256 px with ADA: p, the heuristic's sums and the schedules come back
    from the checkpoint after a real preemption (a narrow net, so the CPU nodes get through it)."""
    data = tmp_path / "ph256"
    run_cli("phantom", data, "--n", "32", "--size", "256", "--shard-size", "8", "--workers", "2")
    small = ["model.g_width=4", "model.d_width=4", "model.max_width=16", "model.blocks=1", "train.batch_size=2",
             "train.num_workers=1", "train.log_every=5", "train.ada=true", "train.ada_target=-0.99",
             "train.ada_kimg=0.2", "train.steps=150", "checkpoint.every=75"]  # fmt: skip
    preempted = tmp_path / "preempted"
    job = submit("--gan", "r3gan256", "--data", data, "--run-dir", preempted, "--time", "10", "--signal-delay", "20",
                 *small)  # fmt: skip
    node = node_of(job)
    wait_for(lambda: last_step(preempted) >= 20, 180, "the job to pass step 20")
    high = sh("sbatch", "--parsable", "-p", "high", "-w", node, "-N", "1", "-n", "2", "-o", "/dev/null", "--wrap",
              "sleep 8").strip()  # fmt: skip
    reference = tmp_path / "reference"
    run_cli("train", "--gan", "r3gan256", "--data", data, "--run-dir", reference, *small, threads=1)
    wait_for(lambda: completed(preempted), 400, "the preempted job to finish")
    stops = [e for e in events(preempted) if e["event"] == "stopped"]
    assert stops and stops[0]["signal"] == "SIGUSR2" and 0 < stops[0]["step"] < 150
    a, b = final_state(reference, 150), final_state(preempted, 150)
    assert a["ada"]["p"] > 0
    assert_identical(a, b, ("g", "d", "ema", "opt_g", "opt_d", "loader", "schedules", "ada"))
    assert job_state(high) in ("COMPLETED", "RUNNING")


def test_scontrol_requeue_and_scancel_resume_from_the_last_checkpoint(slurm, ph64, tmp_path):
    requeued, cancelled = tmp_path / "requeued", tmp_path / "cancelled"
    common = ["--gan", "dcgan64", "--data", ph64, "--time", "10", *TINY, "checkpoint.every=200"]
    job_r = submit(*common, "--run-dir", requeued, "train.steps=3000")
    job_c = submit(*common, "--run-dir", cancelled, "train.steps=100000")
    wait_for(lambda: last_step(requeued) >= 250 and last_step(cancelled) >= 250, 180, "both jobs to pass step 250")
    # Requeue at once: a job this small can finish its steps within the seconds the check below takes.
    sh("scontrol", "requeue", job_r)  # SIGTERM, no USR2
    # A second job on a run dir that a live job holds is refused, naming the holder.
    again = run_cli("submit", "--cluster", "slurm", *common, "--run-dir", cancelled, "train.steps=10", check=False)
    assert_one_line_error(again, f"held by job {job_c} (RUNNING)")
    sh("scancel", job_c)

    def starts() -> list[dict]:
        return [e for e in events(requeued) if e["event"] == "start"]

    wait_for(lambda: completed(requeued) and len(starts()) >= 2, 300, "the requeued job to start again and finish")
    (stop,) = [e for e in events(requeued) if e["event"] == "stopped"]
    assert stop["signal"] == "SIGTERM" and stop["step"] >= 250
    starts = starts()
    # Saved at the stop step and resumed from it: no step lost (the loader workers ignored SIGTERM).
    assert len(starts) == 2 and starts[1]["step"] == stop["step"] and starts[1]["restart_count"] == 1
    wait_for_state(job_c, "CANCELLED")
    (stop_c,) = [e for e in events(cancelled) if e["event"] == "stopped"]
    assert stop_c["signal"] == "SIGTERM" and (cancelled / "checkpoints" / f"step-{stop_c['step']:07d}.json").exists()
    status = run_cli("status", tmp_path, check=False)
    assert status.returncode == 1  # a cancelled run counts as failed
    rows = {line.split("│")[1].strip(): line for line in status.stdout.splitlines() if "│" in line}
    assert "COMPLETED" in rows["requeued"] and "3000/3000" in rows["requeued"] and "CANCELLED" in rows["cancelled"]
    # The cancelled run resumes from its checkpoint when submitted again.
    step = max(e["step"] for e in events(cancelled))
    submit(*common, "--run-dir", cancelled, "train.steps=600" if step < 600 else f"train.steps={step + 50}")
    wait_for(lambda: completed(cancelled), 300, "the resubmitted run to finish")
    assert [e for e in events(cancelled) if e["event"] == "start"][-1]["step"] == stop_c["step"]


def test_a_four_rank_run_continues_on_two_ranks(slurm, ph64, tmp_path):
    run_dir = tmp_path / "shrink"
    common = ["--gan", "dcgan64", "--data", ph64, "--run-dir", run_dir, "--time", "5", *TINY]
    submit(*common, "--nodes", "2", "--tasks-per-node", "2", "train.steps=8")
    wait_for(lambda: completed(run_dir), 240, "the 4-rank run")
    submit(*common, "--nodes", "1", "--tasks-per-node", "2", "train.steps=16")
    wait_for(lambda: len([e for e in events(run_dir) if e["event"] == "completed"]) == 2, 240, "the 2-rank run")
    start = [e for e in events(run_dir) if e["event"] == "start"][-1]
    assert start["world_size"] == 2 and start["step"] == 8
    state = final_state(run_dir, 16)
    assert state["world_size"] == 2 and state["loader"]["samples_seen"] == 8 * 8 * 4 + 8 * 8 * 2


def test_bad_submissions_to_the_cluster_fail_in_one_line(slurm, ph64, tmp_path):
    base = ["submit", "--cluster", "slurm", "--gan", "dcgan64", "--data", ph64, "--run-dir", tmp_path / "bad"]
    assert_one_line_error(run_cli(*base, "--nodes", "9", check=False), "--nodes 9", "only 3 node(s)")
    assert_one_line_error(run_cli(*base, "--partition", "gpu-a100", check=False), "--partition gpu-a100",
                          "low, high")  # fmt: skip
    refused = run_cli(*base, "--constraint", "a100-80gb", check=False)  # sbatch itself says no
    assert_one_line_error(refused, "sbatch refused the job", "feature")
    assert sh("squeue", "-h", "-n", "bad").strip() == ""
