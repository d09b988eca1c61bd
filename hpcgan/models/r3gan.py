"""R3GAN-style generator and discriminator (Huang, Gokaslan, Kuleshov, Tompkin, "The GAN is dead;
long live the GAN! A Modern GAN Baseline", NeurIPS 2024), written from the paper's description.

Both networks are stages of residual blocks, one stage per resolution from 4 px to the image size,
with no normalisation layer anywhere (so every sample's output depends on that sample alone, and
the R1/R2 gradient penalties stay per-sample):

- a block is x + reduce(act(grouped3x3(act(expand(x))))): a 1x1 conv to twice the width, a 3x3 conv
  in groups of 16 channels, a 1x1 conv back, leaky ReLU 0.2 and biases throughout;
- fix-up initialisation: He-initialised weights scaled by (blocks in the network) ** -1/4, and the
  last conv of each block starting at zero, so every block starts as the identity and a deep
  network starts as a shallow one;
- between stages a linear transition: a 1x1 conv where the width changes and a [1, 2, 1]
  interpolation (hpcgan/models/resample.py), never a transposed convolution;
- G starts from a learned 4x4 basis, scaled channel-wise by a linear map of z; a conditional G first
  multiplies z by an embedding of the class (model.g_conditioning=multiply; concatenating it
  collapsed each class to one image on real radiographs, see hpcgan/train/presets.py);
- D ends in a 4x4 depthwise conv and a linear layer, and a conditional D scores the dot product of
  its output with an embedding of the class (projection).

Widths: `width` at the output resolution, doubling at each halving, capped at `max_width`. What
fits a GPU, for r3gan512 (width 64 at 512 px, max 512, 2 blocks per stage) in bf16 on one 80 GB GPU:
- parameters: a block of width C holds 4C² + 288C weights (2C² + 2C² in the 1x1s, 2C x 9 x 16 in
  the grouped 3x3), 1.2 M at C = 512; ten such blocks (4 to 64 px) make most of G's 13.2 M and D's
  13.1 M. Weights, gradients and Adam's moments in fp32 for both, and the EMA G: 0.44 GB.
- activations: a block keeps about 5 tensors of its hidden width 2C for backward. 2C x S² is
  128 x 512² = 33.5 M values at 512 px and halves at each stage below, so about
  2 blocks x 5 x 63 M = 0.63 G values, 1.3 GB per image in bf16, for one pass of G (D the same).
  A G step holds G and D's pass on the fakes; a D step holds D on real and fake and the graph of
  R1/R2's gradient (a second backward through D).
- measured (`python -m hpcgan.bench memory --gan r3gan512`, the saved tensors of the real step
  functions): D step 3.53 GB and G step 2.28 GB per image, so batch 8 needs 0.44 + 8 x 3.53 =
  28.7 GB; the largest batch with a fifth of the GPU kept free is 16.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hpcgan.models.dcgan import levels_for
from hpcgan.models.grouped_conv import GroupedConv2d
from hpcgan.models.label_embedding import LabelEmbedding
from hpcgan.models.resample import downsample2x, upsample2x

EXPANSION = 2  # a block's hidden width is twice its width
GROUP_CHANNELS = 16  # channels per group of the grouped 3x3 (cardinality = hidden width / 16)
SLOPE = 0.2  # leaky ReLU
ACT_GAIN = math.sqrt(2 / (1 + SLOPE**2))  # He gain for leaky ReLU


def stage_widths(resolution: int, width: int, max_width: int) -> list[int]:
    """Widths of the stages at 4, 8, ..., `resolution` px."""
    levels = levels_for(resolution)
    return [min(max_width, width * 2 ** (levels - i)) for i in range(levels + 1)]


def _he(conv: nn.Module, gain: float) -> nn.Module:
    fan_in = conv.weight[0].numel()
    nn.init.normal_(conv.weight, 0.0, gain / math.sqrt(fan_in))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class ResidualBlock(nn.Module):
    def __init__(self, width: int, total_blocks: int) -> None:
        super().__init__()
        hidden = width * EXPANSION
        scale = total_blocks ** (-1 / 4)  # fix-up: 3 layers per block, scale^(2 (3 - 1)) = 1 / blocks
        self.expand = _he(nn.Conv2d(width, hidden, 1), ACT_GAIN * scale)
        groups = max(1, hidden // GROUP_CHANNELS)
        self.spatial = _he(GroupedConv2d(hidden, hidden, 3, padding=1, groups=groups), ACT_GAIN * scale)
        self.reduce = nn.Conv2d(hidden, width, 1)
        nn.init.zeros_(self.reduce.weight)  # the block starts as the identity
        nn.init.zeros_(self.reduce.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.spatial(h), SLOPE)
        return x + self.reduce(h)


def _stage(width: int, blocks: int, total_blocks: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(width, total_blocks) for _ in range(blocks)))


class R3Generator(nn.Module):
    def __init__(
        self, resolution: int, z_dim: int = 64, width: int = 64, num_classes: int = 0, max_width: int = 512,
        blocks: int = 2, conditioning: str = "multiply",
    ) -> None:  # fmt: skip
        super().__init__()
        self.z_dim, self.num_classes, self.multiply = z_dim, num_classes, conditioning == "multiply"
        widths = stage_widths(resolution, width, max_width)
        total = blocks * len(widths)
        self.embed = LabelEmbedding(num_classes, z_dim) if num_classes else None  # N(0, 1), like z
        in_dim = z_dim * (2 if num_classes and not self.multiply else 1)
        self.basis = nn.Parameter(torch.randn(widths[0], 4, 4))
        self.to_basis = _he(nn.Linear(in_dim, widths[0], bias=False), 1.0)
        self.stages = nn.ModuleList([_stage(widths[0], blocks, total)])
        self.transitions = nn.ModuleList()
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            self.transitions.append(_he(nn.Conv2d(w_in, w_out, 1), 1.0) if w_in != w_out else nn.Identity())
            self.stages.append(_stage(w_out, blocks, total))
        self.to_image = _he(nn.Conv2d(widths[-1], 1, 1), 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = z * self.embed(labels) if self.multiply else torch.cat([z, self.embed(labels)], dim=1)
        x = self.basis.unsqueeze(0) * self.to_basis(z)[:, :, None, None]
        x = self.stages[0](x)
        for transition, stage in zip(self.transitions, self.stages[1:], strict=True):
            x = stage(upsample2x(transition(x)))  # 1x1 at the low resolution: a quarter of the cost
        return self.to_image(x)  # linear: no tanh to saturate; exports clamp to [-1, 1]


class DepthwiseBasis(nn.Module):
    """D's 4x4 depthwise convolution over a 4x4 map, written as a weighted sum per channel: the same
    numbers, and a double backward (R1/R2) that is one op instead of one convolution per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, 4, 4) / 4)  # He, gain 1: fan-in 16
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, 4, 4] -> [B, C]."""
        return (x * self.weight).sum(dim=(2, 3)) + self.bias


class R3Discriminator(nn.Module):
    """Returns (logit [B], None), like the other discriminators. `conditional`: "none" or "projection"."""

    def __init__(
        self, resolution: int, width: int = 64, num_classes: int = 0, conditional: str = "none",
        max_width: int = 512, blocks: int = 2,
    ) -> None:  # fmt: skip
        super().__init__()
        if conditional not in ("none", "projection"):
            raise ValueError(f"the r3gan discriminator conditions by projection (model.conditional={conditional})")
        widths = stage_widths(resolution, width, max_width)[::-1]  # resolution px .. 4 px
        total = blocks * len(widths)
        self.from_image = _he(nn.Conv2d(1, widths[0], 1), 1.0)
        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            self.stages.append(_stage(w_in, blocks, total))
            self.transitions.append(_he(nn.Conv2d(w_in, w_out, 1), 1.0) if w_in != w_out else nn.Identity())
        self.stages.append(_stage(widths[-1], blocks, total))
        self.basis = DepthwiseBasis(widths[-1])
        self.conditional = conditional == "projection" and num_classes > 0
        out_dim = widths[-1] if self.conditional else 1
        self.out = _he(nn.Linear(widths[-1], out_dim), 1.0)
        self.embed = LabelEmbedding(num_classes, out_dim) if self.conditional else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        h = self.from_image(x)
        for stage, transition in zip(self.stages[:-1], self.transitions, strict=True):
            h = transition(downsample2x(stage(h)))
        h = self.out(self.basis(self.stages[-1](h)))
        if self.embed is None:
            return h.squeeze(1), None
        return (h * self.embed(labels)).sum(dim=1) / math.sqrt(h.shape[1]), None
