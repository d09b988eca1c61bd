"""Smoke test of `python -m hpcgan.bench train` at 32 px: the JSON line, FLOPs against a count made
here from the layers' shapes, one-line errors for bad options, and the sec/kimg rows set beside
stylegan2-ada's table (on CUDA; on CPU one line says so)."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from hpcgan.bench.train_report import (
    KIMG_NOTE_CPU,
    STYLEGAN2_ADA_SEC_PER_KIMG,
    KimgRow,
    sec_per_kimg,
    stylegan2_ada_batch,
)
from hpcgan.train.config import networks_for
from hpcgan.train.presets import preset
from tests.conftest import REPO, assert_one_line_error


def bench(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hpcgan.bench", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


def forward_flops(model: nn.Module, *inputs: torch.Tensor) -> float:
    """FLOPs per sample of one forward pass through the conv and linear layers (2 per multiply-add),
    from their shapes: an independent count, not torch's FlopCounterMode."""
    total = 0

    def hook(module, args, out):
        nonlocal total
        x = args[0]
        if isinstance(module, nn.Conv2d):
            total += 2 * out.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.ConvTranspose2d):  # every input value meets k*k*out weights
            total += 2 * x.numel() * module.out_channels * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear):
            total += 2 * x.shape[0] * module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(*inputs)
    for h in handles:
        h.remove()
    return total / len(inputs[0])


def test_train_bench_json_rates_and_flops():
    done = bench("--resolution", "32", "--batch-size", "8", "--steps", "1", "--repeats", "1", "--warmup", "1")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "train" and result["resolution"] == 32 and result["batch_size"] == 8
    assert result["speedup"] > 0 and result["speedup_best"] >= result["speedup"]
    names = list(result["images_per_s"])
    assert names[:2] == ["plain (seeds' loop)", "ours (default config)"]
    assert any("channels_last" in n for n in names) and any("fused" in n for n in names)
    assert all(result["images_per_s"][n] > 0 and result["gflops_per_s"][n] > 0 for n in names)
    assert isinstance(result["meets_overhead"], bool) and isinstance(result["meets_speedup"], bool)
    if torch.cuda.is_available():
        assert set(result["sec_per_kimg"]) == {"dcgan256", "r3gan256", "dcgan512", "r3gan512"}
    else:  # the table as before, and one line on what only a GPU measures
        assert result["sec_per_kimg"] is None
        assert KIMG_NOTE_CPU in " ".join(done.stderr.split()), done.stderr[-2000:]

    # One D step (G forward, D on real and on fake, D backward twice) and one G step (G and D
    # forward, D backward to its input, G backward): about 4 G forwards and 8 D forwards.
    config = preset("dcgan64")
    config.model.resolution = 32
    g, d = networks_for(config, 2)
    g.eval(), d.eval()
    fg = forward_flops(g, torch.randn(8, config.model.z_dim))
    fd = forward_flops(d, torch.randn(8, 1, 32, 32))
    assert result["flops_per_image"] == pytest.approx(4 * fg + 8 * fd, rel=0.03)
    assert result["plain_flops_per_image"] == pytest.approx(4 * fg + 8 * fd, rel=0.03)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--resolution", "48"], "--resolution 48"),
        (["--gan", "stylegan9"], "--gan stylegan9"),
        (["--steps", "0"], "--steps 0"),
        (["--batch-size", "1"], "--batch-size 1"),
    ],
)
def test_train_bench_bad_option_is_one_line(args, fragment):
    assert_one_line_error(bench(*args), fragment)


def test_sec_per_kimg_and_stylegan2_ada_batch():
    # 16 images in 0.32 s: 50 images/s, 20 s for 1000 of them.
    assert sec_per_kimg(16 / 0.32) == pytest.approx(20.0)
    assert sec_per_kimg(1000.0) == pytest.approx(1.0)
    # --cfg=auto: 4096 / px per GPU, at most 32 per GPU and 64 in all.
    assert [stylegan2_ada_batch(px) for px in (128, 256, 512, 1024)] == [32, 16, 8, 4]
    assert [stylegan2_ada_batch(px, 8) for px in (128, 256, 512)] == [64, 64, 64]
    assert stylegan2_ada_batch(1024, 8) == 32
    table = STYLEGAN2_ADA_SEC_PER_KIMG  # the figures
    assert (table[256][1], table[256][8], table[512][1], table[512][8]) == (21.6, 4.4, 72.5, 9.5)


def test_kimg_row_sets_ours_beside_the_table_as_ratios():
    row = KimgRow("r3gan256", 256, 16, images_per_s=100.0).to_dict()  # 10 s/kimg
    assert row["sec_per_kimg"] == 10.0 and row["batch_size"] == 16
    published = {1: 21.6, 2: 11.2, 4: 5.6, 8: 4.4}
    assert row["vs_stylegan2_ada"] == {f"{n}gpu": round(10 / t, 3) for n, t in published.items()}
    failed = KimgRow("r3gan512", 512, 8, None, "OutOfMemoryError: CUDA out of memory").to_dict()
    assert "sec_per_kimg" not in failed and failed["error"].startswith("OutOfMemoryError")
