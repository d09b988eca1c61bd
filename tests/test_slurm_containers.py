"""`hpcgan submit --container` on the real local cluster, with a stand-in for Apptainer ($HPCGAN_APPTAINER):
a script that records how it was called on each task and then runs the command after the image, as
`apptainer exec` would inside it. The job, its srun line and submitit's requeue plumbing are real."""

import json
import sys

from tests.conftest import REPO, run_cli
from tests.slurm_cluster import TINY, completed, events, wait_for, wait_for_state

# Skips its own options (those with a value: --bind), records argv and the task's rank, and runs the
# command after the image; `python` is the image's interpreter, here the one running the tests.
STAND_IN = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": args, "rank": os.environ.get("SLURM_PROCID")}}) + "\\n")
assert args[0] == "exec", args
i = 1
while args[i].startswith("-"):
    i += 2 if args[i] in ("--bind", "-B") else 1
command = args[i + 1:]
if command[0] == "python":
    command[0] = {python!r}
os.execv(command[0], command)
"""


def test_every_task_of_a_job_runs_through_apptainer_exec_with_the_binds_and_the_image(slurm, ph64, tmp_path):
    calls = tmp_path / "apptainer-calls.jsonl"
    stand_in = tmp_path / "bin" / "apptainer"
    stand_in.parent.mkdir()
    stand_in.write_text(STAND_IN.format(python=sys.executable, log=str(calls)))
    stand_in.chmod(0o755)
    image = tmp_path / "images" / "hpcgan 1.sif"  # a space: the srun line must keep it one argument
    image.parent.mkdir()
    image.write_bytes(b"")
    run_dir = tmp_path / "runs" / "boxed"
    proc = run_cli("submit", "--cluster", "slurm", "--gan", "dcgan64", "--data", ph64, "--run-dir", run_dir,
                   "--tasks-per-node", "2", "--time", "5", "--container", image, *TINY, "train.steps=6",
                   threads=1, env={"HPCGAN_APPTAINER": str(stand_in)})  # fmt: skip
    job = next(line for line in proc.stderr.splitlines() if line.startswith("submitted job")).split()[2].rstrip(":")
    wait_for(lambda: completed(run_dir), 240, "the containerised 2-rank job to finish")
    assert events(run_dir)[-1]["world_size"] == 2
    record = json.loads((run_dir / "job.json").read_text())
    assert (record["container"], record["container_runtime"]) == (str(image), "apptainer")
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert sorted(r["rank"] for r in recorded) == ["0", "1"]
    binds = ",".join(str(p.resolve()) for p in (REPO, run_dir, ph64))  # where it was submitted, its run, its shards
    for r in recorded:
        assert r["argv"][:7] == ["exec", "--nv", "--bind", binds, str(image), "python", "-u"], r
    wait_for_state(job, "COMPLETED")
