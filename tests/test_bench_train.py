"""Smoke test of `python -m hpcgan.bench train` at 32 px: the JSON line, FLOPs against a count made
here from the layers' shapes, and one-line errors for bad options."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

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
