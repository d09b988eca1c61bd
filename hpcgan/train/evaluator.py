"""The training-time evaluation: every `eval.every` steps the drawing generator's FID/KID (and
diversity) on every rank, written to metrics.jsonl, a warning when the samples lose diversity, and
checkpoints/best.pt kept for the lowest FID."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hpcgan.data.index import ShardSet
from hpcgan.eval.collapse import describe_verdict, with_verdict
from hpcgan.train.checkpointer import Checkpointer
from hpcgan.train.config import EvalConfig
from hpcgan.train.fid_during_training import TrainingEvaluator
from hpcgan.train.training_log import TrainingLog


class Evaluator:
    def __init__(self, config: EvalConfig, shard_set: ShardSet, device: torch.device, main: bool) -> None:
        self.config, self.shard_set, self.device, self.main = config, shard_set, device, main
        self.best_fid = float("inf")
        self._measure: TrainingEvaluator | None = None  # built at the first evaluation (loads the extractor)

    def should_eval(self, step: int) -> bool:
        return bool(self.config.every and step % self.config.every == 0)

    def evaluate(self, g: nn.Module, z_dim: int, num_classes: int, step: int, log: TrainingLog,
                 checkpointer: Checkpointer, state: Callable[[], dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
        """Every rank calls this together; `state()` is called (on every rank: it gathers) only for a new best."""
        if self._measure is None:
            e = self.config
            self._measure = TrainingEvaluator(self.shard_set, e.n, e.extractor, e.split, e.batch_size, self.device,
                                              e.weights or None)  # fmt: skip
        result = with_verdict(self._measure(g, z_dim, num_classes))
        log.write({"step": step, **result})
        if result["diversity"] != "ok" and self.main:
            warnings.warn(f"step {step}: {describe_verdict(result['diversity'], result['diversity_notes'])}",
                          stacklevel=1)  # fmt: skip
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            checkpointer.save_best(step, state(), result["fid"])
        return result
