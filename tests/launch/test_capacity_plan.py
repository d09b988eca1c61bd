"""`hpcgan plan` (hpcgan/launch/capacity_plan*.py, gpu_specs.py, cli/plan_command.py) and the FLOP
counter it shares with the train benchmark (hpcgan/train/step_flops.py)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from hpcgan.launch.capacity_plan import Plan, PlanSettings, gpu_hours, ring_allreduce_bytes
from hpcgan.launch.capacity_plan_calibration import stylegan2_ada_calibration
from hpcgan.launch.gpu_specs import GPUS
from hpcgan.train.presets import preset
from hpcgan.train.step_flops import StepFlops, flop_counter, training_flops
from tests.conftest import run_cli


def _backward_flops(counter: FlopCounterMode, groups: int) -> int:
    x = torch.randn(2, 64, 8, 8, requires_grad=True)
    w = torch.randn(64, 64 // groups, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1, groups=groups)
    with counter:
        y.sum().backward()
    return counter.get_total_flops()


def test_a_grouped_convolution_gradient_costs_what_its_forward_costs():
    forward = 2 * (2 * 64 * 8 * 8) * (64 // 16) * 9  # output elements x multiply-adds per element
    assert _backward_flops(flop_counter(), groups=16) == 2 * forward  # input and weight gradients
    # Without groups ours agrees with torch's own formula (which counts a grouped weight gradient groups x)
    assert _backward_flops(flop_counter(), groups=1) == _backward_flops(FlopCounterMode(display=False), groups=1)


def test_r3gan_flops_per_image_grow_4x_from_256_to_512_px():
    small, large = training_flops(preset("r3gan256")), training_flops(preset("r3gan512"))
    assert small.g_forward > 0 and small.d_update > small.g_update > small.g_forward
    # The same blocks on 4x the pixels at every stage (the width at the output side is 64 in both); one
    # more stage at 512 px is narrow, so the ratio is 4 to within a percent.
    assert large.per_image / small.per_image == pytest.approx(4.0, rel=0.01)
    assert large.grad_params > small.grad_params


def test_lazy_r1_is_averaged_over_the_steps_it_skips():
    every_step = training_flops(preset("dcgan64"))  # no R1/R2: penalty_every changes nothing
    config = preset("r3gan64")
    config.model.g_width = config.model.d_width = config.model.max_width = 16  # the rule, not the width, is tested
    eager = training_flops(config)
    config.loss.penalty_every = 4
    lazy = training_flops(config)
    assert lazy.g_update == eager.g_update and lazy.d_update < eager.d_update
    assert every_step.d_update > 0


def test_ring_allreduce_and_gpu_hours_arithmetic():
    assert ring_allreduce_bytes(100.0, 1) == 0.0
    assert ring_allreduce_bytes(100.0, 2) == 100.0
    assert ring_allreduce_bytes(100.0, 4) == 150.0  # 2 x 3/4
    assert gpu_hours(5000, 6.0, 8) == pytest.approx(5000 * 6.0 * 8 / 3600)


def _plan(gpus: int, **settings) -> Plan:
    flops = StepFlops(d_update=3e12, g_update=1e12, g_forward=1e11, d_steps=1, g_steps=1, grad_params=25_000_000,
                      g_params=10_000_000, d_params=15_000_000)  # fmt: skip
    s = PlanSettings(kimg=1000, gpus=gpus, gpu=GPUS["a100"], precision="bf16", batch=32, workers=4, mfu=0.25,
                     **settings)  # fmt: skip
    return Plan(s, flops, 512, 1e10, 4e8)


def test_plan_arithmetic_on_known_numbers():
    one, many = _plan(1), _plan(16)
    assert one.images_per_s_per_gpu == pytest.approx(0.25 * 312e12 / 4e12)  # 19.5
    assert one.allreduce_s_per_step == 0 and one.bottleneck == "compute"
    assert one.sec_per_kimg == pytest.approx(1000 / 19.5)
    assert one.gpu_hours == pytest.approx(1000 * one.sec_per_kimg / 3600)
    # 16 GPUs on two nodes: 100 MB of fp32 gradients, 2 x 15/16 of it over a 200 Gbit/s port
    assert many.gradient_bytes_per_step == 4 * 25_000_000
    assert many.allreduce_s_per_step == pytest.approx(2 * 15 / 16 * 1e8 / 25e9)
    assert 0 < many.allreduce_share < 0.01 and many.sec_per_kimg < one.sec_per_kimg / 15
    assert many.shards_min == 16 and many.shards_recommended == 64
    slow_fs = _plan(8, fs_gb_s=0.001, image_bytes=1e6)  # 1 MB/s per node for 8 GPUs: 0.125 images/s each
    assert slow_fs.bottleneck == "file system" and slow_fs.images_per_s == pytest.approx(1.0)


def test_stylegan2_ada_timings_imply_the_default_mfu():
    rows = {(r.resolution, r.gpus): r for r in stylegan2_ada_calibration(GPUS["v100"].fp16)}
    assert 0.12 < rows[256, 1].implied_mfu < 0.2 and 0.12 < rows[512, 1].implied_mfu < 0.2
    assert rows[512, 1].flops_per_image == pytest.approx(4 * rows[256, 1].flops_per_image, rel=0.05)


def test_the_cli_prints_every_row_of_the_plan():
    out = run_cli("plan", "--gan", "r3gan512", "--kimg", "5000", "--gpus", "8", "--gpu", "a100").stdout
    for row in ("FLOPs per image", "GPU peak", "MFU", "images/s", "sec/kimg", "GPU-hours", "all-reduce per step",
                "data rate per node", "shards", "checkpoint", "FID-50k"):  # fmt: skip
        assert row in out, row
    for source in ("measured", "published", "assumed", "projected"):
        assert source in out
    assert "312 TFLOP/s bf16" in out and ">= 8, 16 recommended" in out


def test_json_over_a_range_of_gpu_counts():
    out = run_cli("plan", "--gan", "dcgan64", "--gpu", "h100", "--gpus-range", "1,16", "--json").stdout
    one, sixteen = json.loads(out)
    assert (one["gpus"], sixteen["gpus"]) == (1, 16)
    assert one["allreduce_share"] == 0 < sixteen["allreduce_share"]
    assert sixteen["gpu_hours"] >= one["gpu_hours"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "b200"], "--gpu b200: unknown GPU; known: v100, a100, h100"),
        (["--gpus", "0"], "--gpus 0: expected a whole number >= 1"),
        (["--mfu", "1.5"], "--mfu 1.5: expected a fraction in (0, 1]"),
        (["--mfu", "0"], "--mfu 0.0: expected a fraction in (0, 1]"),
        (["--gan", "r3gan999"], "--gan r3gan999: unknown preset"),
    ],
)
def test_bad_input_is_one_line(args, message):
    gan = [] if "--gan" in args else ["--gan", "r3gan512"]
    proc = run_cli("plan", *gan, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
