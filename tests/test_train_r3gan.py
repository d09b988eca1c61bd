"""R3GAN through the real trainer: schedules and ADA state in the checkpoint, exact resume with ADA on
(1 process, and 2 gloo ranks at 256 and 512 px), ADA's p rising on a 16-image set, the schedules'
values in metrics.jsonl, and the diversity verdict of the training-time evaluator."""

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli
from tests.test_train import assert_identical, final_state

ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1")
# ADA with a target it always exceeds and a fast speed: p moves every 4 steps, so the resumed run
# must restore a p > 0 and the heuristic's partial sums to end identical.
ADA = ["train.ada=true", "train.ada_target=-0.99", "train.ada_kimg=0.2", "train.ada_interval=3"]
KEYS = ("g", "d", "ema", "opt_g", "opt_d", "loader", "schedules", "ada")


def tiny(resolution: int) -> list[str]:
    return [f"model.resolution={resolution}", "model.g_width=4", "model.d_width=4", "model.max_width=16",
            "model.blocks=1", "model.conditional=projection", "train.num_workers=1", "train.log_every=1",
            "train.sample_every=0"]  # fmt: skip


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """Phantom shard sets by size, made on first use."""
    made = {}

    def get(size: int, n: int = 64):
        if (size, n) not in made:
            out = tmp_path_factory.mktemp(f"ph{size}") / "shards"
            run_cli("phantom", out, "--n", n, "--size", size, "--shard-size", max(n // 4, 4), "--workers", "2")
            made[size, n] = out
        return made[size, n]

    return get


def train(data, run_dir, *overrides, gan="r3gan64", resume="auto"):
    args = ("train", "--gan", gan, "--data", data, "--run-dir", run_dir, "--resume", resume)
    return run_cli(*args, *overrides, threads=1)


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ada_and_schedules_resume_bit_identical_on_one_process(phantoms, tmp_path):
    data = phantoms(32)
    common = [*tiny(32), "train.batch_size=8", *ADA]
    train(data, tmp_path / "full", *common, "train.steps=10")
    train(data, tmp_path / "split", *common, "train.steps=5", "train.schedule_kimg=0.08")  # horizon: 10 x 8
    proc = train(data, tmp_path / "split", *common, "train.steps=10", "train.schedule_kimg=0.08")
    assert "step 5" in proc.stderr
    full, split = final_state(tmp_path / "full", 10), final_state(tmp_path / "split", 10)
    assert full["ada"]["p"] > 0 and full["schedules"]["images"] == 80
    assert_identical(full, split, KEYS)
    rows = metrics(tmp_path / "full")
    assert rows[0]["ada_p"] == 0 and rows[-1]["ada_p"] == pytest.approx(full["ada"]["p"])
    # LR on its cosine from 2e-4 to a quarter, gamma to a tenth, over the 10 steps.
    assert rows[0]["lr_g"] == pytest.approx(2e-4 * (0.25 + 0.75 * 0.5 * (1 + math.cos(0))))
    assert rows[-1]["lr_g"] == pytest.approx(2e-4 * (0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * 9 / 10))))
    assert rows[-1]["gamma_scale"] == pytest.approx(0.1)


def test_a_raised_train_steps_keeps_the_schedule_the_run_started_with(phantoms, tmp_path):
    data = phantoms(32)
    common = [*tiny(32), "train.batch_size=8"]
    train(data, tmp_path / "run", *common, "train.steps=4")
    train(data, tmp_path / "run", *common, "train.steps=6")
    state = final_state(tmp_path / "run", 6)
    assert state["schedules"]["horizon_images"] == 4 * 8  # from the first start, saved in the checkpoint
    assert metrics(tmp_path / "run")[-1]["lr_g"] == pytest.approx(2e-4 * 0.25)  # past its horizon: the final LR


def test_p_rises_when_d_overfits_16_images(phantoms, tmp_path):
    data = phantoms(32, n=20)  # 16 or so training images after the val split
    run_dir = tmp_path / "overfit"
    train(data, run_dir, *tiny(32), "model.d_width=16", "train.batch_size=8", "train.steps=60", "train.ada=true",
          "train.ada_kimg=0.5", "optim.lr_d=2e-3")  # fmt: skip
    rows = metrics(run_dir)
    assert max(r["ada_p"] for r in rows) > 0.2 and rows[-1]["ada_rt"] > 0.3, [(r["ada_p"], r["ada_rt"]) for r in rows]


@pytest.mark.parametrize("resolution", [256, 512])
def test_two_gloo_ranks_resume_bit_identical_with_ada(phantoms, tmp_path, resolution):
    data = phantoms(resolution, n=16)
    common = ["-m", "hpcgan.train", "--gan", f"r3gan{resolution}", "--data", data, *tiny(resolution),
              "train.batch_size=2", *ADA, "train.schedule_kimg=0.024"]  # fmt: skip

    def run(run_dir, steps):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *map(str, common), "--run-dir", str(run_dir), f"train.steps={steps}"]  # fmt: skip
        proc = subprocess.run(cmd, cwd=REPO, env=ONE_THREAD, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    for run_dir, steps in (("full", 6), ("split", 4), ("split", 6)):
        run(tmp_path / run_dir, steps)
    full, split = final_state(tmp_path / "full", 6), final_state(tmp_path / "split", 6)
    assert full["world_size"] == 2 and full["ada"]["p"] > 0
    assert_identical(full, split, KEYS)
    done = json.loads((tmp_path / "full" / "events.jsonl").read_text().splitlines()[-1])
    assert done["param_digests"][0] == done["param_digests"][1]  # the ranks agree, ADA's p included


def test_training_time_evaluation_measures_diversity_beside_real(phantoms, tmp_path):
    """eval.every: precision/recall and near-duplicates of the samples, each beside the real halves'."""
    data = phantoms(32, n=96)
    run_dir = tmp_path / "eval"
    train(data, run_dir, *tiny(32), "train.batch_size=8", "train.steps=4", "eval.every=4", "eval.n=64")
    record = [r for r in metrics(run_dir) if "fid" in r][-1]
    # Two halves of one phantom set cover each other, and phantoms are not near-twins of each other.
    assert record["recall_real"] > 0.5 and record["precision_real"] > 0.5, record
    assert record["near_duplicates_real"] < 0.2 and 0 <= record["near_duplicates"] <= 1, record
    assert record["diversity"] in ("ok", "low", "collapsed") and record["diversity_n"] >= 4
