"""FID/KID every `eval.every` steps inside the training job, on every rank (each generates a share
of the images; the statistics are all-reduced), against the run's own shard set."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hpcgan.data.index import ShardSet
from hpcgan.eval.evaluate import evaluate, fake_stats, real_stats
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.feature_stats import FeatureStats


class TrainingEvaluator:
    def __init__(
        self, shard_set: ShardSet, n: int, extractor: str, split: str, batch_size: int, device,
        weights: str | None = None,
    ) -> None:  # fmt: skip
        self.shard_set, self.n, self.split, self.batch_size, self.device = shard_set, n, split, batch_size, device
        module, self.identity = build_extractor(extractor, weights=weights)
        self.extractor = module.to(device)
        self.real: FeatureStats | None = None  # computed (or read from the cache) at the first evaluation

    @torch.no_grad()
    def __call__(self, g: nn.Module, z_dim: int, num_classes: int) -> dict[str, Any]:
        """Every rank calls this together; every rank gets the same result."""
        if self.real is None:
            self.real = real_stats(self.shard_set, self.extractor, self.identity, self.split, self.batch_size,
                                   self.device)  # fmt: skip
        was_training = g.training
        g.eval()

        def sample(n: int, seed: int) -> torch.Tensor:
            gen = torch.Generator().manual_seed(seed)
            z = torch.randn(n, z_dim, generator=gen).to(self.device)
            labels = (torch.arange(n) % max(num_classes, 1)).to(self.device)
            return ((g(z, labels).float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

        try:
            fake = fake_stats(sample, self.n, self.extractor, self.batch_size, self.device)
        finally:
            g.train(was_training)
        return {**evaluate(self.real, fake), "extractor": self.identity, "split": self.split}
