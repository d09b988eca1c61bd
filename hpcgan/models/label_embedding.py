"""The embedding of a sample's class or label set, shared by every conditional G and D.

A class index looks up one row, as nn.Embedding does (same parameter, same checkpoints). A label
set comes as a multi-hot float [B, C] (hpcgan/data/label_sets.py: findings plus a No Finding
column that is 1 exactly when no finding is): its embedding is the sum of its rows divided by the
square root of their number, so a set of any size keeps the scale of one row (an N(0, 1) row stays
N(0, 1), which matters where G multiplies z by it). A one-hot vector gives exactly the row.
"""

from __future__ import annotations

import torch
from torch import nn


class LabelEmbedding(nn.Embedding):
    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.is_floating_point():
            count = labels.sum(dim=1, keepdim=True).clamp(min=1.0)
            return (labels.to(self.weight.dtype) @ self.weight) / count.sqrt().to(self.weight.dtype)
        return super().forward(labels)
