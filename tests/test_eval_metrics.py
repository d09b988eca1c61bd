"""The metrics next to FID: the Inception Score (against torchmetrics and closed forms),
precision/recall (fidelity vs coverage), and MS-SSIM diversity."""

import pytest
import torch
from torch import nn

from hpcgan.eval.diversity import mean_ms_ssim, scales_for
from hpcgan.eval.inception_score import ClassProbStats
from hpcgan.eval.precision_recall import precision_recall


class FixedLogits(nn.Module):
    """A 'network' whose logits are a fixed linear map of the pixels (torchmetrics calls it)."""

    def __init__(self) -> None:
        super().__init__()
        self.map = nn.Linear(64, 7)
        torch.nn.init.normal_(self.map.weight, std=0.05, generator=torch.Generator().manual_seed(0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.map(images.flatten(1).float() / 255)


def test_inception_score_equals_torchmetrics_on_the_same_logits():
    from torchmetrics.image.inception import InceptionScore

    images = torch.randint(0, 256, (300, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    net = FixedLogits()
    reference = InceptionScore(feature=net, splits=1)
    ours = ClassProbStats(7, splits=1)
    with torch.no_grad():
        for k, batch in enumerate(images.split(64)):
            reference.update(batch)
            ours.update(net(batch), k)
    assert ours.score()[0] == pytest.approx(reference.compute()[0].item(), rel=1e-5)  # theirs: float32


def test_inception_score_closed_forms():
    uniform = ClassProbStats(10, splits=2)
    uniform.update(torch.zeros(50, 10), 0)
    uniform.update(torch.zeros(50, 10), 1)
    assert uniform.score() == pytest.approx((1.0, 0.0))  # nothing recognised: IS 1
    confident = ClassProbStats(10, splits=1)
    confident.update(torch.eye(10).repeat(5, 1) * 100, 0)  # each image one class, all classes equally
    assert confident.score()[0] == pytest.approx(10.0, rel=1e-6)  # the maximum: the number of classes


def test_precision_recall_separate_fidelity_from_coverage():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(600, 8, generator=gen)
    same = torch.randn(600, 8, generator=gen)
    p, r = precision_recall(real, same)
    assert p > 0.7 and r > 0.7
    p, r = precision_recall(real, same + 10)  # far away: nothing matches
    assert p == 0.0 and r == 0.0
    # Collapsed onto five real images: every sample looks real, most of the real set is missed.
    collapsed = real[:5].repeat(120, 1) + 0.01 * torch.randn(600, 8, generator=gen)
    p, r = precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.1


def test_ms_ssim_diversity():
    assert [scales_for(s) for s in (32, 64, 128, 256, 512)] == [2, 3, 4, 5, 5]
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 1, 64, 64), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 256, (6, 1, 64, 64), dtype=torch.uint8, generator=gen)
    assert mean_ms_ssim(x, x) == pytest.approx(1.0)
    assert mean_ms_ssim(x, y) < 0.2
