"""`hpcgan submit --container` on the real local cluster, with a stand-in for Apptainer ($HPCGAN_APPTAINER):
a script that records how it was called on each task and then runs the command after the image, as
`apptainer exec` would inside it. The job, its srun line and submitit's requeue plumbing are real."""

import json

from tests.conftest import REPO, run_cli
from tests.slurm_cluster import TINY, completed, events, stand_in_apptainer, wait_for, wait_for_state


def test_every_task_of_a_job_runs_through_apptainer_exec_with_the_binds_and_the_image(slurm, ph64, tmp_path):
    stand_in, calls = stand_in_apptainer(tmp_path)
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
