"""Live loggers on the real local SLURM cluster: a 2-rank run with train.loggers=tensorboard,wandb
(W&B offline, the default), preempted by a high-priority job, requeued and finished, is one W&B run
whose step history, like TensorBoard's, holds every logged step once, in order."""

import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hpcgan.train.wandb_history import logged_steps, run_files
from tests.slurm_cluster import TINY, completed, events, last_step, node_of, sh, submit, wait_for

STEPS, LOG_EVERY = 300, 25  # TINY logs every 25 steps


def test_a_preempted_and_requeued_run_is_one_wandb_run_with_each_step_once(slurm, ph64, tmp_path):
    run_dir = tmp_path / "logged"
    job = submit("--gan", "dcgan64", "--data", ph64, "--run-dir", run_dir, "--time", "10", "--signal-delay", "20",
                 "--tasks-per-node", "2", *TINY, f"train.steps={STEPS}", "checkpoint.every=100",
                 "train.loggers=tensorboard,wandb")  # fmt: skip
    node = node_of(job)
    wait_for(lambda: last_step(run_dir) >= 75, 180, "the job to pass step 75")
    high = sh("sbatch", "--parsable", "-p", "high", "-w", node, "-N", "1", "-n", "2", "-o", "/dev/null", "--wrap",
              "sleep 8").strip()  # fmt: skip
    wait_for(lambda: completed(run_dir), 400, "the preempted job to finish")
    starts = [e for e in events(run_dir) if e["event"] == "start"]
    stops = [e for e in events(run_dir) if e["event"] == "stopped"]
    assert len(starts) == 2 and stops[0]["signal"] == "SIGUSR2" and 75 <= stops[0]["step"] < STEPS, (starts, stops)
    assert starts[0]["world_size"] == 2 and high

    expected = list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
    loggers = run_dir / "loggers"
    run_id = json.loads((loggers / "wandb-run.json").read_text())["id"]
    files = run_files(loggers / "wandb", run_id)
    # One W&B run: one offline folder per start (rank 0's only), all under the stored id; one
    # TensorBoard event file per start.
    assert len(files) == 2 and len(list((loggers / "wandb").glob("offline-run-*"))) == 2
    assert len(list((loggers / "tensorboard").glob("events.out.tfevents.*"))) == 2
    steps = logged_steps(loggers / "wandb", run_id)
    print(f"W&B run {run_id}: {len(files)} offline folders, history steps {steps}; stopped at {stops[0]['step']}")
    assert steps == expected  # no gap, no repeat
    tensorboard = EventAccumulator(str(loggers / "tensorboard"))
    tensorboard.Reload()
    assert [e.step for e in tensorboard.Scalars("train/loss_d")] == expected
