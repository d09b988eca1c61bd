"""The model-FLOP utilisation that StyleGAN2-ADA's published V100 timings imply: the yardstick for the
plan's default --mfu.

NVIDIA's stylegan2-ada-pytorch README lists sec/kimg for --cfg=auto on Tesla V100s (lower end of each
range below). Their networks are not in this project, so their FLOPs are estimated here from the
published architecture (StyleGAN2 config F layout: channels min(channel_base / res, 512) with
channel_base 16384 below 512 px and 32768 from 512 px, as --cfg=auto picks; two 3x3 convs per
resolution in G with a stride-2 transposed conv up; a residual D with two 3x3 convs and a 1x1 skip per
resolution), counting multiply-adds of the convolutions only, as FlopCounterMode does.

Per training image, in forward passes of G and D (the phases of StyleGAN2-ADA's loss):
- G update: G forward, D forward, D input gradient, G backward: 3 G + 2 D;
- D update: G forward without gradient, D forward and backward on a fake and on a real: 1 G + 6 D;
- R1 every 16 steps at full batch: about 6 D (forward, input gradient with its graph, and its
  backward) / 16 = 0.4 D;
- path-length regularisation every 4 steps at half the batch: about 6 G / 8 = 0.75 G.
Total 4.75 G + 8.4 D (assumed; the lazy terms add about 5%).
"""

from __future__ import annotations

from dataclasses import dataclass

# Resolution -> {GPUs: sec/kimg}, the lower end of each published range (Tesla V100, --cfg=auto).
STYLEGAN2_ADA_SEC_PER_KIMG: dict[int, dict[int, float]] = {
    256: {1: 21.6, 2: 11.2, 4: 5.6, 8: 4.4},
    512: {1: 72.5, 2: 37.7, 4: 18.7, 8: 9.5},
}
G_PASSES, D_PASSES = 4.75, 8.4


def _channels(res: int, resolution: int) -> int:
    base = 32768 if resolution >= 512 else 16384
    return min(base // res, 512)


def stylegan2_forward_flops(resolution: int) -> tuple[float, float]:
    """(G forward, D forward) FLOPs per image of StyleGAN2 at `resolution` (RGB), estimated from the layout."""

    def c(res: int) -> int:
        return _channels(res, resolution)

    g = c(4) * c(4) * 9 * 16 + c(4) * 3 * 16  # the 4x4 conv and its toRGB
    d = 0
    res = 8
    while res <= resolution:
        g += c(res // 2) * c(res) * 9 * (res // 2) ** 2  # transposed conv up: 9 taps per input pixel
        g += c(res) * c(res) * 9 * res**2 + c(res) * 3 * res**2  # the second conv and toRGB
        d += c(res) * c(res) * 9 * res**2  # conv at res
        d += c(res) * c(res // 2) * 9 * (res // 2) ** 2 + c(res) * c(res // 2) * (res // 2) ** 2  # down + skip
        res *= 2
    d += 3 * c(resolution) * resolution**2  # fromRGB
    d += (c(4) + 1) * c(4) * 9 * 16 + c(4) * 16 * c(4)  # epilogue: minibatch-std conv, dense
    return 2.0 * g, 2.0 * d


@dataclass(frozen=True)
class CalibrationRow:
    resolution: int
    gpus: int
    sec_per_kimg: float
    flops_per_image: float
    implied_mfu: float  # against the V100's 125 TFLOP/s fp16 tensor peak


def stylegan2_ada_calibration(v100_peak_tflops: float) -> list[CalibrationRow]:
    rows = []
    for resolution, timings in STYLEGAN2_ADA_SEC_PER_KIMG.items():
        g, d = stylegan2_forward_flops(resolution)
        per_image = G_PASSES * g + D_PASSES * d
        for gpus, sec in timings.items():
            achieved = per_image * 1000 / sec / gpus  # FLOP/s per GPU
            rows.append(CalibrationRow(resolution, gpus, sec, per_image, achieved / (v100_peak_tflops * 1e12)))
    return rows
