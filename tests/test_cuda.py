"""What only a GPU can show, ready to run on one as it is: `pytest tests/test_cuda.py -rs` on a node
with a CUDA GPU (e.g. `srun --gpus 1 pytest tests/test_cuda.py -rs`); skipped without CUDA.

- bf16 autocast and fp16 with one loss scaler per network, for one preset of each family (every
  distinct architecture, conditioning, loss and optimizer among the presets, R3GAN's included),
  and r3gan256 and r3gan512 at their own resolution;
- channels_last and fused Adam with the default config, and auto precision resolving to bf16;
- a 1-process NCCL group: all_reduce, the object collectives and the FID statistics' all-reduce,
  then the Trainer itself under torchrun on NCCL;
- DeepSpeed ZeRO-2 on one GPU, stopped and resumed;
- an exact resume with train.deterministic=true (a resumed run ends bit-identical);
- the FID Inception network on the GPU: the same features as on the CPU, and FID during training.

Every run is tiny (32 px phantoms, widths 4-16, a few steps): the file takes minutes on one GPU.
DEVICE and BACKEND are the only CUDA-specific names: set to "cpu" and "gloo", the same calls run
on a CPU (that is how this file's logic was checked on a machine without a GPU).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from hpcgan.train.config import apply_overrides
from hpcgan.train.precision import resolve
from hpcgan.train.presets import PRESETS, cpu_overrides, preset
from tests.conftest import REPO, run_cli
from tests.test_train import assert_identical, final_state

DEVICE = "cuda"  # the device the trainer must pick by itself
BACKEND = "nccl"  # the process-group backend of that device

pytestmark = pytest.mark.skipif(
    DEVICE == "cuda" and not torch.cuda.is_available(),
    reason="needs a CUDA GPU: run it on a GPU node, e.g. srun --gpus 1 pytest tests/test_cuda.py -rs",
)

TINY = ["model.resolution=32", "train.batch_size=8", "train.num_workers=0", "train.log_every=1",
        "train.sample_every=0", "checkpoint.every=0"]  # fmt: skip
STEPS = 3


def families() -> list[str]:
    """One preset per family: the first of each distinct architecture, D, conditioning, loss,
    penalty and optimizer (r3gan64, vanilla64, dcgan64, wgan64, wgan-gp256, cgan64, acgan256, ...),
    so a new kind of preset is covered without editing this file; plus R3GAN with projection."""
    seen: dict[tuple, str] = {}
    for name in PRESETS:
        c = preset(name)
        kind = (c.model.arch, c.model.d_arch, c.model.conditional, c.loss.kind, c.loss.gp_weight > 0,
                c.loss.r1_gamma > 0, c.optim.name)  # fmt: skip
        seen.setdefault(kind, name)
    return [*seen.values(), "r3gan64 model.conditional=projection"]


@pytest.fixture(scope="module")
def ph32(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cuda-ph32") / "shards"
    run_cli("phantom", out, "--n", "64", "--size", "32", "--shard-size", "32", "--workers", "2")
    return out


def small(gan: str) -> list[str]:
    """The preset at CPU-demo widths: the GPU bugs are in the code paths, not in the sizes."""
    return [*cpu_overrides(gan, 4 if gan.startswith("r3gan") else 8), *TINY]


def train_here(data: Path, run_dir: Path, gan: str, *overrides: str):
    """The Trainer in this process (so its device, optimizers and scalers can be looked at)."""
    from hpcgan.train.trainer import Trainer

    config = apply_overrides(preset(gan), [*small(gan), f"train.steps={STEPS}", *overrides])
    config.data = str(data)
    trainer = Trainer(config, run_dir, resume="none")
    assert trainer.train() == "completed"
    trainer.close()
    return trainer


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def saved_devices(path: Path) -> set[str]:
    """Where the tensors of a checkpoint were when it was saved ("cuda:0", "cpu")."""
    where: set[str] = set()
    torch.load(path, weights_only=True, map_location=lambda storage, location: where.add(location) or storage)
    return where


def networks(trainer) -> list[torch.nn.Module]:
    s = trainer.strategy
    return [s.unwrap(s.g), s.unwrap(s.d)]


def assert_scaler_counted_its_own_steps(state: dict, which: str, updates: int) -> None:
    """A scaler's growth tracker counts the steps since its last overflow: with no overflow (the
    scale still at its start) it equals its network's updates. One scaler shared by G and D
    (accelerate's) would count both networks' steps."""
    scaler = state[f"scaler_{which}"]
    skips = math.log2(scaler["scale"] and 65536.0 / scaler["scale"])
    assert scaler["_growth_tracker"] + skips <= updates, (which, scaler, updates)
    if skips == 0:
        assert scaler["_growth_tracker"] == updates, (which, scaler, updates)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("gan", families())
def test_each_family_trains_in_bf16_and_in_fp16_with_two_scalers(ph32, tmp_path, gan, precision):
    gan, *extra = gan.split()
    trainer = train_here(ph32, tmp_path / "run", gan, f"train.precision={precision}", *extra)
    assert trainer.device.type == DEVICE and trainer.precision.name == precision
    for net in networks(trainer):  # fp32 weights under autocast, finite after the steps
        assert all(p.device.type == DEVICE and p.dtype == torch.float32 and torch.isfinite(p).all()
                   for p in net.parameters())  # fmt: skip
    records = metrics(tmp_path / "run")
    assert len(records) == STEPS and all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)
    state = final_state(tmp_path / "run", STEPS)
    assert any(where.startswith(DEVICE) for where in saved_devices(tmp_path / "run" / "checkpoints" /
                                                                    f"step-{STEPS:07d}.pt"))  # fmt: skip
    scalers = trainer.strategy.scalers
    if precision == "fp16":
        assert scalers["g"] is not scalers["d"] and {"loss_scale_g", "loss_scale_d"} <= set(records[-1])
        config = trainer.config
        assert_scaler_counted_its_own_steps(state, "d", STEPS * config.optim.d_steps)
        assert_scaler_counted_its_own_steps(state, "g", STEPS * config.optim.g_steps)
    else:
        assert scalers == {"g": None, "d": None} and "loss_scale_g" not in records[-1]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("gan", ["r3gan256", "r3gan512"])
def test_r3gan_presets_train_at_their_own_resolution(tmp_path_factory, tmp_path, gan, precision):
    """The deepest networks: R1 and R2 through every stage down to 4 px, where fp16 overflows first."""
    resolution = preset(gan).model.resolution
    data = tmp_path_factory.mktemp(f"cuda-ph{resolution}") / "shards"
    run_cli("phantom", data, "--n", "8", "--size", resolution, "--shard-size", "4", "--workers", "2")
    trainer = train_here(data, tmp_path / "run", gan, f"model.resolution={resolution}", "model.max_width=16",
                         "train.batch_size=4", "loss.penalty_every=1", f"train.precision={precision}")  # fmt: skip
    assert trainer.device.type == DEVICE
    for net in networks(trainer):
        assert all(torch.isfinite(p).all() for p in net.parameters())
    records = metrics(tmp_path / "run")
    assert len(records) == STEPS and all(math.isfinite(r["loss_d"]) and r["penalty"] > 0 for r in records)


@pytest.mark.parametrize("gan", ["dcgan64", "r3gan64"])
def test_default_config_is_channels_last_fused_adam_and_auto_precision(ph32, tmp_path, gan):
    trainer = train_here(ph32, tmp_path / "run", gan)
    assert trainer.precision.name == resolve("auto", torch.device(DEVICE))  # bf16 on CUDA
    for net in [*networks(trainer), trainer.ema.module]:
        convs = [p for p in net.parameters() if p.dim() == 4]
        assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    for opt in (trainer.strategy.opt_g, trainer.strategy.opt_d):
        assert opt.defaults["fused"] is True
        moments = [s["exp_avg"] for s in opt.state.values()]
        assert moments and all(m.device.type == DEVICE for m in moments)


def test_one_process_nccl_group_reduces_gathers_and_broadcasts(tmp_path):
    from hpcgan.eval.feature_stats import all_reduce_sum

    if DEVICE == "cuda":
        torch.cuda.set_device(0)  # NCCL's object collectives use the current device
    dist.init_process_group(BACKEND, init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        assert dist.get_backend() == BACKEND
        x = torch.arange(6, dtype=torch.float32, device=DEVICE)
        dist.all_reduce(x)
        assert x.device.type == DEVICE and torch.equal(x.cpu(), torch.arange(6, dtype=torch.float32))
        stats = torch.linspace(0, 1, 5, dtype=torch.float64)  # FID's sums are float64 CPU tensors
        assert torch.equal(all_reduce_sum(stats.clone()), stats)
        box = [{"step": 7}]
        dist.broadcast_object_list(box, src=0)
        gathered = [None]
        dist.all_gather_object(gathered, {"rank": dist.get_rank()})
        assert box == [{"step": 7}] and gathered == [{"rank": 0}]
    finally:
        dist.destroy_process_group()


JOB = """
import json, sys
from pathlib import Path
import torch.distributed as dist
from hpcgan.train.config import apply_overrides
from hpcgan.train.presets import preset
from hpcgan.train.trainer import Trainer

data, run_dir, out, *overrides = sys.argv[1:]
config = apply_overrides(preset("r3gan64"), overrides)
config.data = data
trainer = Trainer(config, Path(run_dir), resume="none")
trainer.train()
facts = {"backend": dist.get_backend(), "world": dist.get_world_size(), "device": trainer.device.type}
trainer.close()
Path(out).write_text(json.dumps(facts))
"""


def test_trainer_under_torchrun_runs_on_the_backend_of_its_device(ph32, tmp_path):
    """One process under torchrun: accelerate makes the process group (NCCL on GPUs) and wraps G
    and D in DDP; the loop's gathers and reductions run through it."""
    job, out = tmp_path / "job.py", tmp_path / "facts.json"
    job.write_text(textwrap.dedent(JOB))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", str(job),
           str(ph32), str(tmp_path / "run"), str(out), *small("r3gan64"), "train.steps=2"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(out.read_text()) == {"backend": BACKEND, "world": 1, "device": DEVICE}
    done = json.loads((tmp_path / "run" / "events.jsonl").read_text().splitlines()[-1])
    assert done["event"] == "completed"


def test_deepspeed_zero2_on_one_device_trains_and_resumes(ph32, tmp_path):
    pytest.importorskip("deepspeed", reason="pip install 'hpcgan[deepspeed]'")
    run_dir = tmp_path / "zero2"

    def train(steps: int) -> subprocess.CompletedProcess:
        return run_cli("train", "--gan", "r3gan64", "--data", ph32, "--run-dir", run_dir, "--strategy", "deepspeed",
                       "--zero", "2", *small("r3gan64"), "train.schedule_kimg=1", f"train.steps={steps}",
                       threads=1)  # fmt: skip

    train(2)
    proc = train(4)
    assert "resumed from" in proc.stderr and "step-0000002.pt" in proc.stderr
    state = final_state(run_dir, 4)
    assert state["opt_g"]["stage"] == 2 and state["opt_d"]["stage"] == 2
    assert any(where.startswith(DEVICE) for where in saved_devices(run_dir / "checkpoints" / "step-0000004.pt"))
    assert all(math.isfinite(r["loss_d"]) for r in metrics(run_dir))


# r3gan's LR, beta2 and gamma schedules span the run: a fixed span lets a 3-step run resume into an 8-step one.
@pytest.mark.parametrize("gan", ["dcgan64", "r3gan64 train.schedule_kimg=1"])
def test_deterministic_resume_ends_bit_identical(ph32, tmp_path, gan):
    gan, *extra = gan.split()

    def train(run_dir: Path, steps: int) -> subprocess.CompletedProcess:
        return run_cli("train", "--gan", gan, "--data", ph32, "--run-dir", run_dir, *small(gan), *extra,
                       "train.deterministic=true", "checkpoint.every=2", f"train.steps={steps}",
                       threads=1)  # fmt: skip

    train(tmp_path / "full", 8)
    train(tmp_path / "split", 3)
    proc = train(tmp_path / "split", 8)
    assert "resumed from" in proc.stderr
    assert "deterministic implementation" not in proc.stderr  # every op of these presets has one
    assert_identical(final_state(tmp_path / "full", 8), final_state(tmp_path / "split", 8))
    assert any(where.startswith(DEVICE) for where in saved_devices(tmp_path / "full" / "checkpoints" /
                                                                    "step-0000008.pt"))  # fmt: skip


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> tuple[Path, str]:
    """The real FID weights when this machine has them (find_weights never downloads), else a random
    state dict in their layout: the device check needs the network, not its training."""
    from hpcgan.errors import UserError
    from hpcgan.eval.inception import WEIGHTS_FILE, find_weights
    from tests.test_eval_inception import random_state_dict

    try:
        return find_weights(), "the FID weights"
    except UserError:
        path = tmp_path_factory.mktemp("inception") / WEIGHTS_FILE
        torch.save(random_state_dict(0), path)
        return path, "random weights (no FID weights on this machine)"


def test_inception_features_on_the_device_match_the_cpu(inception_weights):
    from hpcgan.eval.extractors import build_extractor

    path, source = inception_weights
    extractor, _ = build_extractor("inception", weights=path)
    images = torch.randint(0, 256, (4, 1, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    on_cpu = extractor(images)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # compare fp32 with fp32 (TF32 convolutions round to 10 bits)
    try:
        on_device = extractor.to(DEVICE)(images.to(DEVICE))
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert on_device.device.type == DEVICE and on_device.shape == on_cpu.shape == (4, 2048)
    gap = ((on_device.cpu() - on_cpu).norm() / on_cpu.norm()).item()
    assert gap < 1e-3, f"{source}: relative gap {gap:.2e}"


def test_fid_with_inception_during_training_runs_on_the_device(ph32, tmp_path, inception_weights):
    path, source = inception_weights
    run_dir = tmp_path / "run"
    trainer = train_here(ph32, run_dir, "dcgan64", "train.steps=2", "eval.every=2", "eval.n=32",
                         "eval.extractor=inception", f"eval.weights={path}", "eval.batch_size=16")  # fmt: skip
    real = trainer.evaluator._real  # built at the first evaluation
    assert real.identity.startswith("inception") and next(real.extractor.parameters()).device.type == DEVICE
    fids = [r["fid"] for r in metrics(run_dir) if "fid" in r]
    assert len(fids) == 1 and math.isfinite(fids[0]) and fids[0] > 0, source
    assert (run_dir / "checkpoints" / "best.pt").exists()
