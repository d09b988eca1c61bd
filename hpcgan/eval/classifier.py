"""A small ResNet trained from scratch (no download) to judge synthetic data by what it teaches:
train on synthetic images, test on real ones (TSTR), or on real plus synthetic.

Images are resized once to `size` px. Batches are drawn class-balanced (chest X-ray sets are often
3:1 pneumonia to normal, and synthetic sets are balanced: the comparison should not hinge on the
prior), with small random shifts and zooms; no flips, since the heart's side is anatomy.

Multi-label targets (float multi-hot [N, F], one column per finding) give a sigmoid head trained
with binary cross-entropy, one logit per finding; batches are then drawn uniformly (a class-balanced
draw has no meaning when an image holds several findings, and ROC AUC does not hinge on the prior).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClassifierOptions:
    size: int = 64  # px the classifier sees
    width: int = 16  # channels of the first stage; doubled per stage
    steps: int = 500
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class SmallResNet(nn.Module):
    """A stride-2 stem (half the pixels before any residual block: a quarter of the cost at 64 px) +
    four residual stages (width, 2x, 4x, 8x; stride 2 after the first) + linear head."""

    def __init__(self, num_classes: int, width: int = 16, multi_label: bool = False) -> None:
        super().__init__()
        self.multi_label = multi_label  # one sigmoid per output (findings), else a softmax over classes
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        pairs = zip([width, *widths[:-1]], widths, strict=True)
        self.stages = nn.Sequential(*(_Block(a, b, 2 if i else 1) for i, (a, b) in enumerate(pairs)))
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float images in [-1, 1] [B, 1, S, S] -> logits [B, classes]."""
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 1, S, S] -> float [N, 1, size, size] in [-1, 1], antialiased, in chunks."""
    out = torch.empty((len(images), 1, size, size))
    for start in range(0, len(images), 512):
        x = images[start : start + 512].float() / 127.5 - 1
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[start : start + 512] = x
    return out


def _shift_and_zoom(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per image: a shift of up to 6% of the side and a zoom of ±5%."""
    n = len(x)
    scale = 1 + (torch.rand(n, generator=gen) - 0.5) * 0.1
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.12
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale, scale, shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    options: ClassifierOptions,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> SmallResNet:
    """A SmallResNet trained on uint8 `images` [N, 1, S, S] with int64 `labels` [N] (softmax, cross-
    entropy) or float multi-hot `labels` [N, num_classes] (sigmoid per output, binary cross-entropy);
    `seed` fixes its initialisation, batches and augmentation."""
    multi_label = labels.is_floating_point()
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallResNet(num_classes, options.width, multi_label)
    x = resize(images, options.size)
    if multi_label:
        weights = torch.ones(len(labels), dtype=torch.double)  # uniform draws
        loss_fn = F.binary_cross_entropy_with_logits
    else:
        counts = torch.bincount(labels, minlength=num_classes).clamp(min=1)
        weights = (1.0 / counts.double())[labels]  # class-balanced draws
        loss_fn = F.cross_entropy
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=options.lr, total_steps=options.steps)
    model.train()
    for _ in range(options.steps):
        batch = torch.multinomial(weights, options.batch_size, replacement=True, generator=gen)
        loss = loss_fn(model(_shift_and_zoom(x[batch], gen)), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress:
            progress(1)
    return model.eval()


@torch.no_grad()
def predict(model: SmallResNet, images: torch.Tensor, size: int, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities [N, classes] of uint8 `images` (per-output sigmoids for a multi-label model)."""
    model.eval()
    norm = torch.sigmoid if getattr(model, "multi_label", False) else lambda logits: logits.softmax(1)
    return torch.cat([norm(model(resize(images[s : s + batch_size], size))) for s in range(0, len(images), batch_size)])
