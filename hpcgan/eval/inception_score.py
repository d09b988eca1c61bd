"""Inception Score from streamed class probabilities: exp(E_x KL(p(y|x) || p(y))), as a mean and
spread over splits. Each split keeps Σ_x p(y|x), Σ_x Σ_y p log p and its count, so memory stays
flat in N (torchmetrics' InceptionScore keeps every feature) and the sums all-reduce across ranks.
Batch k of the generated images goes to split k % splits: the same splits on any world size."""

from __future__ import annotations

import torch
import torch.distributed as dist

from hpcgan.errors import UserError
from hpcgan.eval.feature_stats import all_reduce_sum


class ClassProbStats:
    def __init__(self, num_classes: int, splits: int = 10) -> None:
        self.splits = splits
        self.prob_sum = torch.zeros(splits, num_classes, dtype=torch.float64)
        self.neg_entropy_sum = torch.zeros(splits, dtype=torch.float64)  # Σ_x Σ_y p log p
        self.count = torch.zeros(splits, dtype=torch.float64)

    def update(self, logits: torch.Tensor, split: int) -> None:
        log_p = logits.detach().to("cpu", torch.float64).log_softmax(1)
        p = log_p.exp()
        s = split % self.splits
        self.prob_sum[s] += p.sum(0)
        self.neg_entropy_sum[s] += (p * log_p).sum()
        self.count[s] += len(p)

    def reduce(self) -> ClassProbStats:
        """All ranks' sums (a collective: every rank must call it)."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            self.prob_sum = all_reduce_sum(self.prob_sum)
            self.neg_entropy_sum = all_reduce_sum(self.neg_entropy_sum)
            self.count = all_reduce_sum(self.count)
        return self

    def score(self) -> tuple[float, float]:
        """(mean, std) of the per-split scores, over the splits that got images."""
        used = self.count > 0
        if int(self.count.sum()) < 2:
            raise UserError("the Inception Score needs at least 2 generated images")
        n = self.count[used]
        p_mean = self.prob_sum[used] / n.unsqueeze(1)
        kl = self.neg_entropy_sum[used] / n - (p_mean * p_mean.clamp_min(1e-30).log()).sum(1)
        scores = kl.exp()
        std = float(scores.std(unbiased=False)) if len(scores) > 1 else 0.0
        return float(scores.mean()), std
