"""The GAN zoo and the trainer: every preset steps, configs override cleanly, training learns,
2 DDP ranks stay identical, and a resumed run (in-process stop or SIGKILL) ends bit-identical."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from hpcgan.errors import UserError
from hpcgan.train.checkpoint import latest_valid
from hpcgan.train.config import apply_overrides, networks_for
from hpcgan.train.fake_labels import FakeLabels
from hpcgan.train.gan_steps import discriminator_loss, generator_loss
from hpcgan.train.presets import PRESETS, preset
from tests.conftest import REPO, run_cli

TINY = [
    "model.g_width=8",
    "model.d_width=8",
    "train.batch_size=8",
    "train.num_workers=0",
    "train.log_every=5",
    "train.sample_every=0",
]


@pytest.mark.parametrize("name", [*sorted(PRESETS), "dcgan64 model.d_batchnorm=true"])
def test_every_preset_builds_and_steps_at_its_resolution(name):
    name, *extra = name.split()
    config = apply_overrides(preset(name), ["model.g_width=4", "model.d_width=4", *extra])
    m = config.model
    g, d = networks_for(config, 2)
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(4, 1, m.resolution, m.resolution, generator=gen) * 2 - 1
    loss_d, stats = discriminator_loss(config, g, d, real, torch.tensor([0, 1, 0, 1]), FakeLabels(2), gen)
    loss_d.backward()
    assert torch.isfinite(loss_d) and all(p.grad is not None for p in d.parameters() if p.requires_grad)
    loss_g, _ = generator_loss(config, g, d, 4, FakeLabels(2), gen, "cpu", real)
    loss_g.backward()
    assert torch.isfinite(loss_g) and all(p.grad is not None for p in g.parameters())
    assert g(torch.randn(2, m.z_dim), torch.tensor([0, 1])).shape == (2, 1, m.resolution, m.resolution)


def test_overrides_are_typed_and_checked():
    config = apply_overrides(
        preset("dcgan64"), ["train.steps=7", "optim.lr_g=1e-3", "model.d_batchnorm=true", "seed=3"]
    )
    assert (config.train.steps, config.optim.lr_g, config.model.d_batchnorm, config.seed) == (7, 1e-3, True, 3)
    with pytest.raises(UserError, match="unknown key"):
        apply_overrides(preset("dcgan64"), ["train.stepz=7"])
    with pytest.raises(UserError, match="expected int"):
        apply_overrides(preset("dcgan64"), ["train.steps=many"])
    with pytest.raises(UserError, match="unknown preset"):
        preset("stylegan9")


@pytest.fixture(scope="module")
def phantoms64(tmp_path_factory):
    out = tmp_path_factory.mktemp("ph64") / "shards"
    run_cli("phantom", out, "--n", "256", "--size", "64", "--shard-size", "64", "--workers", "2")
    return out


# Bit-identical comparisons run single-threaded: a once-seen difference between an uninterrupted
# and a resumed run, on a loaded 2-core machine, points at thread-count-dependent CPU reductions.
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1")


def train(data, run_dir, *overrides, resume="auto"):
    args = ("train", "--gan", "dcgan64", "--data", data, "--run-dir", run_dir, "--resume", resume, *TINY)
    return run_cli(*args, *overrides, threads=1)


def final_state(run_dir, step):
    return torch.load(run_dir / "checkpoints" / f"step-{step:07d}.pt", weights_only=True)


def assert_identical(a, b, keys=("g", "d", "ema", "opt_g", "opt_d", "loader")):
    def same(x, y):
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, list | tuple):
            return len(x) == len(y) and all(same(i, j) for i, j in zip(x, y, strict=True))
        return torch.equal(x, y) if torch.is_tensor(x) else x == y

    for key in keys:
        assert same(a[key], b[key]), f"{key} differs"


def test_stop_and_resume_in_process_is_bit_identical(phantoms64, tmp_path):
    train(phantoms64, tmp_path / "full", "train.steps=16")
    train(phantoms64, tmp_path / "split", "train.steps=7")
    proc = train(phantoms64, tmp_path / "split", "train.steps=16")
    assert "resumed from" in proc.stderr and "step 7" in proc.stderr
    assert_identical(final_state(tmp_path / "full", 16), final_state(tmp_path / "split", 16))


def test_sigkill_after_a_checkpoint_then_resume_is_bit_identical(phantoms64, tmp_path):
    train(phantoms64, tmp_path / "full", "train.steps=30")
    run_dir = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "hpcgan",
        "train",
        "--gan",
        "dcgan64",
        "--data",
        str(phantoms64),
        "--run-dir",
        str(run_dir),
        *TINY,
        "train.steps=30",
        "checkpoint.every=5",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = run_dir / "checkpoints" / "step-0000010.json"
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert marker.exists() and not (run_dir / "checkpoints" / "step-0000030.json").exists()
    train(phantoms64, run_dir, "train.steps=30", "checkpoint.every=5")
    assert_identical(final_state(tmp_path / "full", 30), final_state(run_dir, 30))


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(phantoms64, tmp_path):
    run_dir = tmp_path / "run"
    train(phantoms64, run_dir, "train.steps=10", "checkpoint.every=5")
    newest = run_dir / "checkpoints" / "step-0000010.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a write cut short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path, state = latest_valid(run_dir)
    assert path.name == "step-0000005.pt" and state["step"] == 5
    assert any("step-0000010.pt" in str(w.message) for w in caught)
    proc = train(phantoms64, run_dir, "train.steps=10", "checkpoint.every=5")
    assert "step-0000005.pt at step 5" in proc.stderr


def test_short_training_learns_the_data(phantoms64, tmp_path):
    """After 400 steps the EMA generator's mean image is much closer to the data's than at start."""
    run_dir = tmp_path / "learn"
    train(
        phantoms64,
        run_dir,
        "train.steps=400",
        "train.ema_rampup=10",
        "checkpoint.every=0",
        "model.g_width=16",
        "model.d_width=16",
        "train.batch_size=16",
    )
    from hpcgan.data.loader import ShardLoader
    from hpcgan.models.dcgan import DCGANGenerator

    real = torch.cat([im for im, _ in ShardLoader(phantoms64, batch_size=64)]).float() / 127.5 - 1
    config = json.loads((run_dir / "config.json").read_text())
    state = final_state(run_dir, 400)

    def mean_gap(weights):
        g = DCGANGenerator(64, config["model"]["z_dim"], 16)
        g.load_state_dict(weights)
        with torch.no_grad():
            fake = g.eval()(torch.randn(256, config["model"]["z_dim"], generator=torch.Generator().manual_seed(1)))
        return (fake.mean(0) - real.mean(0)).abs().mean().item()

    torch.manual_seed(0)
    untrained = DCGANGenerator(64, config["model"]["z_dim"], 16).state_dict()
    assert mean_gap(state["ema"]) < 0.5 * mean_gap(untrained)
    assert (run_dir / "samples" / "step-000400.png").exists()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 400 and {"loss_d", "loss_g", "d_real_acc", "images_per_s"} <= set(metrics[-1])


def test_two_ddp_ranks_stay_identical_and_resume_exactly(phantoms64, tmp_path):
    env = ONE_THREAD
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    out = tmp_path / "ranks.json"
    # With the original DCGAN's BatchNorm D: the case DDP needs broadcast_buffers=False for.
    proc = run(
        REPO / "tests" / "dist_train_job.py",
        phantoms64,
        tmp_path / "ddp",
        out,
        *TINY,
        "train.steps=8",
        "train.num_workers=1",
        "model.d_batchnorm=true",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads(out.read_text())
    assert ranks[0]["world"] == 2 and ranks[0] == ranks[1]

    common = ["-m", "hpcgan.train", "--gan", "dcgan64", "--data", phantoms64, *TINY, "train.num_workers=1",
              "model.d_batchnorm=true"]  # fmt: skip
    for run_dir, steps in (("full", 12), ("split", 5), ("split", 12)):
        proc = run(*common, "--run-dir", tmp_path / run_dir, f"train.steps={steps}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = final_state(tmp_path / "full", 12), final_state(tmp_path / "split", 12)
    assert a["world_size"] == 2 and len(a["rng"]) == 2
    assert_identical(a, b)

    # SIGKILL the whole job (launcher and both ranks) after a checkpoint, then resume.
    killed = tmp_path / "killed"
    args = [*common, "--run-dir", killed, "train.steps=12", "checkpoint.every=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    marker, deadline = killed / "checkpoints" / "step-0000004.json", time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists() and not (killed / "checkpoints" / "step-0000012.json").exists()
    proc = run(*common, "--run-dir", killed, "train.steps=12", "checkpoint.every=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_identical(a, final_state(killed, 12))


def test_resume_on_another_world_size_continues_from_the_global_sample_count(phantoms64, tmp_path):
    env = ONE_THREAD
    run_dir = tmp_path / "grow"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "hpcgan.train", "--gan", "dcgan64", "--data", str(phantoms64), "--run-dir", str(run_dir), *TINY,
           "train.steps=6"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = final_state(run_dir, 6)
    proc = train(phantoms64, run_dir, "train.steps=9")  # one process now
    assert "resumed from" in proc.stderr and "step 6" in proc.stderr
    one = final_state(run_dir, 9)
    assert two["world_size"] == 2 and one["world_size"] == 1
    # 6 steps x 8 images x 2 ranks, then 3 steps x 8 x 1.
    assert two["loader"]["samples_seen"] == 96 and one["loader"]["samples_seen"] == 96 + 24


def test_accelerate_launch_runs_the_same_trainer_on_two_ranks(phantoms64, tmp_path):
    """The third launcher (after torchrun and srun/submitit): `accelerate launch --multi_gpu` on CPU."""
    run_dir = tmp_path / "acc"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
           "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hpcgan.train", "--gan",
           "dcgan64", "--data", str(phantoms64), "--run-dir", str(run_dir), *TINY, "train.steps=4"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=ONE_THREAD, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    assert done["event"] == "completed" and done["world_size"] == 2
    assert done["param_digests"][0] == done["param_digests"][1]
