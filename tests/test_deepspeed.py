"""The DeepSpeed strategy (two ZeRO-1/2 engines, 2 gloo ranks on CPU): ranks agree, resume is exact,
the first losses match DDP's, checkpoints cross between the strategies, bad options fail in one line,
and a run goes through `python -m hpcgan.submit` on the local SLURM cluster.

DeepSpeed JIT-compiles its shared-memory comm op at the first start on a machine (about 40 s, g++),
cached in ~/.cache/torch_extensions (or $TORCH_EXTENSIONS_DIR): CI pays it once, in the first test here.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, assert_one_line_error, run_cli
from tests.slurm_cluster import completed, events, wait_for
from tests.test_train import assert_identical, final_state

pytest.importorskip("deepspeed", reason="pip install 'hpcgan[deepspeed]' (CI installs it)")

TINY = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=16", "train.num_workers=0",
        "train.log_every=1", "train.sample_every=0", "train.channels_last=false"]  # fmt: skip


def one_thread(**extra: str) -> dict[str, str]:
    """The environment now (the slurm fixture sets SLURM_CONF), single-threaded as in test_train.py."""
    return dict(os.environ, OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu", **extra)


STEPS = 4


@pytest.fixture(scope="module")
def ph32(tmp_path_factory):
    """32 px phantoms, on a path the SLURM nodes see too."""
    out = tmp_path_factory.mktemp("ds-ph32") / "shards"
    run_cli("phantom", out, "--n", "128", "--size", "32", "--shard-size", "32", "--workers", "2")
    return out


def torchrun(data, run_dir, *args, gan="dcgan64"):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "hpcgan.train", "--gan", gan, "--data", str(data), "--run-dir", str(run_dir), *TINY,
           *map(str, args)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=one_thread(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def zero_runs(ph32, tmp_path_factory):
    """An uninterrupted 2-rank run per ZeRO stage, made once for the tests below."""
    root = tmp_path_factory.mktemp("ds-runs")
    runs = {}
    for stage in (1, 2):
        torchrun(ph32, root / f"zero{stage}", "--strategy", "deepspeed", "--zero", stage, f"train.steps={STEPS}")
        runs[stage] = root / f"zero{stage}"
    return runs


@pytest.mark.parametrize("stage", [1, 2])
def test_zero_ranks_agree_and_a_resumed_run_ends_identical(ph32, zero_runs, tmp_path, stage):
    full = zero_runs[stage]
    done = json.loads((full / "events.jsonl").read_text().splitlines()[-1])
    assert done["event"] == "completed" and done["world_size"] == 2
    assert done["param_digests"][0] == done["param_digests"][1]  # G and D equal on both ranks
    state = final_state(full, STEPS)
    assert state["opt_g"]["stage"] == stage and len(state["opt_g"]["zero_partitions"]) == 2
    # Stop at step 2, resume (--resume auto) and finish: G, D, EMA, both ZeRO optimizers, loader.
    split = tmp_path / "split"
    torchrun(ph32, split, "--strategy", "deepspeed", "--zero", stage, "train.steps=2")
    proc = torchrun(ph32, split, "--strategy", "deepspeed", "--zero", stage, f"train.steps={STEPS}")
    assert "resumed from" in proc.stderr and "step-0000002.pt" in proc.stderr
    assert_identical(state, final_state(split, STEPS))


# The presets whose steps differ: weight clipping, gradient penalty (autograd.grad through D), R1,
# BiGAN's encoder; one in bf16. (All 12 presets ran 2 steps under ZeRO-2 on one process by hand.)
@pytest.mark.parametrize("gan", ["wgan64", "wgan-gp256 train.precision=bf16", "sngan256", "bigan64"])
def test_presets_with_their_own_steps_train_under_zero2(ph32, tmp_path, gan):
    gan, *extra = gan.split()
    torchrun(ph32, tmp_path / gan, "--strategy", "deepspeed", "train.steps=2", "optim.d_steps=2", *extra, gan=gan)
    done = json.loads((tmp_path / gan / "events.jsonl").read_text().splitlines()[-1])
    assert done["event"] == "completed" and done["param_digests"][0] == done["param_digests"][1]
    if gan == "wgan64":  # clipped in the module and in ZeRO's fp32 master copy (else the step undoes it)
        d = final_state(tmp_path / gan, 2)["d"]
        assert max(v.abs().max().item() for k, v in d.items() if v.is_floating_point() and "running" not in k) <= 0.01


@pytest.mark.parametrize("resolution", [256, 512])
def test_r3gan_with_ada_trains_under_zero2(tmp_path, resolution):
    """R3GAN at 256 and 512 px under ZeRO-2: R1 and R2 (a double backward through D's module), the
    relativistic G step (D's module on real images too) and ADA's p, the same on both ranks."""
    data = tmp_path / "shards"
    run_cli("phantom", data, "--n", "8", "--size", resolution, "--shard-size", "4", "--workers", "2")
    run_dir = tmp_path / "r3"
    torchrun(data, run_dir, "--strategy", "deepspeed", "--zero", "2", "train.steps=4", f"model.resolution={resolution}",
             "model.g_width=4", "model.d_width=4", "model.max_width=16", "model.blocks=1",
             "model.conditional=projection", "train.batch_size=2", "train.ada=true", "train.ada_target=-0.99",
             "train.ada_kimg=0.05", "train.ada_interval=2", gan=f"r3gan{resolution}")  # fmt: skip
    done = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    assert done["event"] == "completed" and done["param_digests"][0] == done["param_digests"][1]
    state = final_state(run_dir, 4)
    assert state["ada"]["p"] > 0 and state["opt_g"]["stage"] == 2
    assert all(r["penalty"] > 0 for r in metrics(run_dir))  # R1 + R2 every step


def test_first_losses_match_the_ddp_strategy(ph32, zero_runs, tmp_path):
    """Same seeds, same batches, same torch Adam (ZeRO runs it on each rank's flat partition, which
    is elementwise the same update); the gradients are averaged over 2 ranks either way (a sum of two
    then a halving, both exact in the same order). Measured here: equal to the last bit for 10 steps
    (ZeRO-1 and ZeRO-2), and within 1.2e-7 of DDP with its default channels_last=true (other conv
    kernels). 1e-5 leaves room for another reduction order (more ranks, NCCL) and still catches a
    real difference: a skipped, doubled or unaveraged update moves the losses by ~1e-3 or more."""
    torchrun(ph32, tmp_path / "ddp", f"train.steps={STEPS}")
    ddp, zero2 = metrics(tmp_path / "ddp"), metrics(zero_runs[2])
    gaps = [max(abs(a[k] - b[k]) for k in ("loss_d", "loss_g")) for a, b in zip(ddp, zero2, strict=True)]
    print("max |loss difference| per step, DDP vs ZeRO-2:", gaps)
    assert len(gaps) == STEPS and max(gaps) < 1e-5


def test_a_ddp_checkpoint_starts_a_deepspeed_run_and_back(ph32, tmp_path):
    """Weights, EMA, step and loader carry over; Adam starts afresh (its first step moves every
    weight by at most lr), with a warning."""
    run_dir, lr = tmp_path / "cross", 2e-4

    def train(*args):
        return run_cli("train", "--gan", "dcgan64", "--data", ph32, "--run-dir", run_dir, *TINY, *args, threads=1,
                       env={"DS_ACCELERATOR": "cpu"})  # fmt: skip

    def moved(a, b):  # over G's parameters (BatchNorm's buffers change in forward, not by Adam)
        keys = [k for k in a["g"] if "running_" not in k and "num_batches" not in k]
        return max((a["g"][k] - b["g"][k]).abs().max().item() for k in keys)

    train("train.steps=2")
    proc = train("--strategy", "deepspeed", "--zero", "2", "train.steps=3")
    assert "resumed from" in proc.stderr and "weights only" in proc.stderr
    ddp2, ds3 = final_state(run_dir, 2), final_state(run_dir, 3)
    assert "zero_partitions" in ds3["opt_g"] and ds3["loader"]["samples_seen"] == 3 * 16
    assert 0 < moved(ds3, ddp2) <= lr * 1.01
    proc = train("train.steps=4")  # and back to DDP
    assert "resumed from" in proc.stderr and "weights only" in proc.stderr
    ddp4 = final_state(run_dir, 4)
    assert "state" in ddp4["opt_g"] and 0 < moved(ddp4, ds3) <= lr * 1.01


def test_bad_deepspeed_options_fail_in_one_line(ph32, tmp_path):
    base = ["train", "--gan", "dcgan64", "--data", ph32, "--run-dir", tmp_path / "bad", *TINY]
    assert_one_line_error(run_cli(*base, "--strategy", "deepspeed", "--zero", "3", check=False),
                          "train.zero=3", "expected 1 | 2")  # fmt: skip
    assert_one_line_error(run_cli(*base, "--strategy", "horovod", check=False), "train.strategy=horovod")
    theirs = tmp_path / "ds.json"
    theirs.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    assert_one_line_error(
        run_cli(*base, "--strategy", "deepspeed", "--zero", "2", "--deepspeed-config", theirs, check=False),
        "zero_optimization.stage is 3",
        "train.zero=2",
    )
    theirs.write_text(json.dumps({"train_micro_batch_size_per_gpu": 8, "zero_optimization": {"stage": 2}}))
    assert_one_line_error(run_cli(*base, "--strategy", "deepspeed", "--deepspeed-config", theirs, check=False),
                          "train_micro_batch_size_per_gpu is 8", "train.batch_size=16")  # fmt: skip
    # Without the package (its import blocked): the same one line from `hpcgan submit --dry-run`.
    blocked = ("import sys; sys.modules['deepspeed'] = None; from hpcgan.cli.main import main; "
               "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    cmd = [sys.executable, "-c", blocked, "submit", "--cluster", "local", "--dry-run", "--gan", "dcgan64", "--data",
           str(ph32), "--run-dir", str(tmp_path / "nods"), *TINY, "--strategy", "deepspeed"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=one_thread())
    assert_one_line_error(proc, "--strategy deepspeed", "not installed", "pip install --no-build-isolation deepspeed")


def test_a_deepspeed_run_through_hpcgan_submit_on_the_cluster(slurm, ph32, tmp_path):
    run_dir = tmp_path / "slurm-ds"
    cmd = [sys.executable, "-m", "hpcgan.submit", "--cluster", "slurm", "--gan", "dcgan64", "--data", str(ph32),
           "--run-dir", str(run_dir), "--tasks-per-node", "2", "--time", "5", "--strategy", "deepspeed", "--zero",
           "2", "--offload-optimizer", "cpu", *TINY, f"train.steps={STEPS}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=one_thread(COLUMNS="200"), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: completed(run_dir), 240, "the DeepSpeed job to finish")
    done = events(run_dir)[-1]
    assert done["world_size"] == 2 and done["param_digests"][0] == done["param_digests"][1]
    config = json.loads((run_dir / "config.json").read_text())["train"]
    assert (config["strategy"], config["zero"], config["offload_optimizer"]) == ("deepspeed", 2, "cpu")
    assert torch.load(run_dir / "checkpoints" / f"step-{STEPS:07d}.pt", weights_only=True)["opt_d"]["stage"] == 2
