"""The classes or label sets the generator is asked for in each training step.

train.label_sampling: "auto" draws classes uniformly (as hpcgan always has) and label sets from the
training distribution; "data" draws both as often as they occur in the training split; "balanced"
draws classes uniformly and label sets so that every finding (and No Finding) is equally likely.
Every draw comes from the step's torch generator, whose state the checkpoints keep: exact resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hpcgan.data.label_sets import LabelSets

LABEL_SAMPLINGS = ("auto", "data", "balanced")


@dataclass(frozen=True)
class FakeLabels:
    num_classes: int  # 0: unconditional data (one class)
    label_sets: LabelSets | None = None  # a multi-label set's training label sets
    sampling: str = "auto"  # train.label_sampling
    class_counts: tuple[int, ...] = ()  # single-label "data" sampling: training images per class

    @property
    def multi_label(self) -> bool:
        return self.label_sets is not None

    def draw(self, n: int, gen: torch.Generator, device: torch.device | str) -> torch.Tensor:
        """int64 classes [n], or multi-hot float label sets [n, C]."""
        if self.label_sets is not None:
            return self.label_sets.draw(n, gen, device, balanced=self.sampling == "balanced")
        if self.sampling == "data" and self.num_classes > 1 and sum(self.class_counts):
            weights = torch.tensor(self.class_counts, dtype=torch.float, device=device)
            return torch.multinomial(weights, n, replacement=True, generator=gen)
        return torch.randint(0, max(self.num_classes, 1), (n,), generator=gen, device=device)


def class_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AC-GAN's auxiliary term: cross-entropy over classes, or per-class BCE for multi-hot label sets
    (a sigmoid per finding: findings co-occur)."""
    if labels.is_floating_point():
        return F.binary_cross_entropy_with_logits(class_logits.float(), labels.float())
    return F.cross_entropy(class_logits, labels)
