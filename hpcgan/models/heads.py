"""The output heads every convolutional discriminator shares: a real/fake logit, plus an optional
class term, either a projection (cGAN) or an auxiliary classifier (AC-GAN)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from hpcgan.models.label_embedding import LabelEmbedding

CONDITIONALS = ("none", "projection", "aux")


class DiscriminatorHeads(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, conditional: str, wrap: Callable[[nn.Module], nn.Module]):
        super().__init__()
        if conditional not in CONDITIONALS:
            raise ValueError(f"conditional {conditional!r}: expected one of {', '.join(CONDITIONALS)}")
        self.logit = wrap(nn.Linear(feature_dim, 1))
        self.project = wrap(LabelEmbedding(num_classes, feature_dim)) if conditional == "projection" else None
        self.classify = wrap(nn.Linear(feature_dim, num_classes)) if conditional == "aux" else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`h`: [B, feature_dim] -> (real/fake logit [B], class logits [B, C] or None)."""
        logit = self.logit(h).squeeze(1)
        if self.project is not None:
            logit = logit + (self.project(labels) * h).sum(dim=1)  # projection discriminator
        return logit, (self.classify(h) if self.classify is not None else None)
