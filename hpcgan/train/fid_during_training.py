"""FID/KID every `eval.every` steps inside the training job, on every rank (each draws its own
numbers of the generated images; the statistics are all-reduced), against the run's own shard set.

It draws the images `hpcgan eval` draws (hpcgan/models/latents.py, the same seed) and computes them
through the same metric registry, so the FID logged at step N equals `hpcgan eval` of step N's
checkpoint with the same n, extractor and split (tests/trained/test_evaluate.py)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hpcgan.data.index import ShardSet
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.metric_inputs import MetricInputs, RealSide
from hpcgan.eval.registry import compute
from hpcgan.models.latents import EVAL_SEED, LatentSampler, generator_classes

# What training measures: the feature metrics (MS-SSIM and the IS are `hpcgan eval`'s).
TRAINING_METRICS = ("fid_kid", "precision_recall", "near_duplicates")


class TrainingEvaluator:
    def __init__(
        self, shard_set: ShardSet, n: int, extractor: str, split: str, batch_size: int, device: torch.device | str,
        weights: str | None = None,
    ) -> None:  # fmt: skip
        self.n, self.device = n, device
        module, identity = build_extractor(extractor, weights=weights)
        # Real statistics are computed (or read from the cache) at the first evaluation, then kept.
        self.real = RealSide(shard_set, split, module.to(device), identity, batch_size, device)

    @torch.no_grad()
    def __call__(self, g: nn.Module, z_dim: int, num_classes: int) -> dict[str, Any]:
        """Every rank calls this together; every rank gets the same result. `num_classes`: the
        data's classes (an unconditional `g` draws one class, as a loaded one does)."""
        was_training = g.training
        g.eval()
        sampler = LatentSampler(g, z_dim, generator_classes(g, num_classes), EVAL_SEED, self.device)
        try:
            return compute(TRAINING_METRICS, MetricInputs(self.real, sampler, self.n))
        finally:
            g.train(was_training)
