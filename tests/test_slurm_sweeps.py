"""On the real local SLURM cluster: a 1-minute job that goes through several time limits and still
finishes, and an array sweep whose one element, preempted alone, resumes."""

import json

from tests.conftest import run_cli
from tests.slurm_cluster import (
    TINY,
    completed,
    events,
    last_step,
    node_of,
    sh,
    submit,
    wait_for,
    wait_for_state,
)


def test_a_one_minute_job_survives_several_time_limits_and_finishes(slurm, ph64, tmp_path):
    run_dir = tmp_path / "limited"
    # About 100 s of training at ~60 steps/s on one core; each 1-minute slot gets USR2 10-40 s in.
    job = submit("--gan", "dcgan64", "--data", ph64, "--run-dir", run_dir, "--time", "1", "--signal-delay", "20",
                 *TINY, "train.steps=6000", "checkpoint.every=1000")  # fmt: skip
    wait_for(lambda: completed(run_dir), 900, "the time-limited job to finish", poll=2)
    timeline = events(run_dir)
    stops = [e for e in timeline if e["event"] == "stopped"]
    starts = [e for e in timeline if e["event"] == "start"]
    assert len(stops) >= 2 and all(e["signal"] == "SIGUSR2" for e in stops)
    assert [s["step"] for s in starts[1:]] == [e["step"] for e in stops]  # each start resumes at the last stop
    assert timeline[-1]["step"] == 6000
    wait_for_state(job, "COMPLETED")
    print("time-limit timeline:", [(e["event"], e["step"], e.get("restart_count")) for e in timeline])


def test_an_array_sweep_completes_and_an_element_preempted_alone_resumes(slurm, ph64, tmp_path):
    sweep = tmp_path / "seeds.toml"
    sweep.write_text(f'gan = "dcgan64"\ndata = "{ph64}"\n[base]\n"train.steps" = 600\n[grid]\nseed = [0, 1, 2]\n')
    # Two CPUs per element = a whole node each, so preempting one element's node touches no other
    # (one torch thread each: this machine has 2 cores for all 3 "nodes").
    proc = run_cli("submit", "--cluster", "slurm", "--sweep", sweep, "--run-dir", tmp_path / "seeds", "--time", "10",
                   "--signal-delay", "20", "--cpus-per-task", "2", "--threads", "1", "--array-parallelism", "3",
                   *TINY)  # fmt: skip
    jobs = [line.split()[2].rstrip(":") for line in proc.stderr.splitlines() if line.startswith("submitted job")]
    assert len(jobs) == 3 and len({j.split("_")[0] for j in jobs}) == 1  # one array
    runs = sorted((tmp_path / "seeds").glob("0*"))
    assert [r.name for r in runs] == ["000-seed=0", "001-seed=1", "002-seed=2"]
    target = runs[1]
    node = node_of(jobs[1])
    wait_for(lambda: last_step(target) >= 100, 300, "element 1 to pass step 100")
    sh("sbatch", "--parsable", "-p", "high", "-w", node, "-N", "1", "-n", "2", "-o", "/dev/null", "--wrap", "sleep 8")
    wait_for(lambda: all(completed(r) for r in runs), 600, "all three elements to finish", poll=1)
    stopped = {r.name: [e for e in events(r) if e["event"] == "stopped"] for r in runs}
    assert [e["signal"] for e in stopped["001-seed=1"]] == ["SIGUSR2"]
    assert stopped["000-seed=0"] == [] or stopped["002-seed=2"] == []  # the others ran through
    for run in runs:
        assert json.loads((run / "config.json").read_text())["seed"] == int(run.name[-1])
    status = run_cli("status", tmp_path / "seeds")
    assert status.stdout.count("COMPLETED") == 3
    assert [line for line in status.stdout.splitlines() if "001-seed=1" in line][0].rstrip(" │").endswith("1")
