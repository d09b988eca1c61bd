"""The training-time evaluation: every `eval.every` steps FID/KID, precision/recall and
near-duplicates of the drawing generator, on every rank (each draws its own share of the images; the
statistics are all-reduced), against the run's own shard set. Written to metrics.jsonl, a warning
when the samples lose diversity, and checkpoints/best.pt kept for the lowest FID.

It draws the images `hpcgan eval` draws (hpcgan/models/latents.py, the same seed) and computes them
through the same metric registry, so the FID logged at step N equals `hpcgan eval` of step N's
checkpoint with the same n, extractor and split (tests/trained/test_evaluate.py)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hpcgan.data.index import ShardSet
from hpcgan.eval.collapse import describe_verdict, with_verdict
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.metric_inputs import MetricInputs, RealSide
from hpcgan.eval.registry import compute
from hpcgan.models.latents import EVAL_SEED, LatentSampler, generator_classes
from hpcgan.train.checkpointer import Checkpointer
from hpcgan.train.config import EvalConfig
from hpcgan.train.training_log import TrainingLog

# What training measures: the feature metrics (MS-SSIM and the IS are `hpcgan eval`'s).
TRAINING_METRICS = ("fid_kid", "precision_recall", "near_duplicates")


class Evaluator:
    def __init__(self, config: EvalConfig, shard_set: ShardSet, device: torch.device, main: bool) -> None:
        self.config, self.shard_set, self.device, self.main = config, shard_set, device, main
        self.label_sets = shard_set.label_sets
        self.best_fid = float("inf")
        self._real: RealSide | None = None  # built at the first evaluation (loads the extractor)

    def should_eval(self, step: int) -> bool:
        return bool(self.config.every and step % self.config.every == 0)

    @torch.no_grad()
    def measure(self, g: nn.Module, z_dim: int, num_classes: int) -> dict[str, Any]:
        """The metrics of `g` (every rank together; every rank gets the same result). `num_classes`:
        the data's classes (an unconditional `g` draws one class, as a loaded one does)."""
        if self._real is None:
            e = self.config
            module, identity = build_extractor(e.extractor, weights=e.weights or None)
            # Real statistics are computed (or read from the cache) once, then kept.
            self._real = RealSide(self.shard_set, e.split, module.to(self.device), identity, e.batch_size,
                                  self.device)  # fmt: skip
        was_training = g.training
        g.eval()
        classes = generator_classes(g, num_classes)
        sampler = LatentSampler(g, z_dim, classes, EVAL_SEED, self.device, self.label_sets if classes else None)
        try:
            # A multi-label run is also measured finding by finding: rare findings are what it is for.
            names = TRAINING_METRICS + (("fid_per_finding",) if sampler.multi_label else ())
            return compute(names, MetricInputs(self._real, sampler, self.config.n))
        finally:
            g.train(was_training)

    def evaluate(self, g: nn.Module, z_dim: int, num_classes: int, step: int, log: TrainingLog,
                 checkpointer: Checkpointer, state: Callable[[], dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
        """Every rank calls this together; `state()` is called (on every rank: it gathers) only for a new best."""
        result = with_verdict(self.measure(g, z_dim, num_classes))
        log.write({"step": step, **result})
        if result["diversity"] != "ok" and self.main:
            warnings.warn(f"step {step}: {describe_verdict(result['diversity'], result['diversity_notes'])}",
                          stacklevel=1)  # fmt: skip
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            checkpointer.save_best(step, state(), result["fid"])
        return result
