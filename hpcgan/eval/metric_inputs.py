"""What the metrics of one evaluation share (hpcgan/eval/registry.py): the real side, read once for
every checkpoint evaluated, and the generated side of one checkpoint, extracted once for every
metric that uses features (FID/KID, precision/recall, near-duplicates and the Inception Score read
the same pass)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from hpcgan.data.index import ShardSet
from hpcgan.data.read_split import read_split
from hpcgan.eval.evaluate import fake_stats, real_stats, real_stats_by_class
from hpcgan.eval.feature_stats import FeatureStats
from hpcgan.eval.inception_score import ClassProbStats
from hpcgan.models.latents import LatentSampler

INCEPTION_CLASSES = 1008  # the logits of the 2015-12-05 Inception graph


@dataclass
class RealSide:
    """The real images of an evaluation: `split` of `shard_set`, seen through `extractor`."""

    shard_set: ShardSet
    split: str
    extractor: nn.Module
    identity: str  # the extractor and its weights (hpcgan/eval/extractors.py)
    batch_size: int = 64
    device: torch.device | str = "cpu"
    _stats: FeatureStats | None = None
    _by_class: list[FeatureStats] | None = None
    _images: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def stats(self) -> FeatureStats:
        """The split's feature statistics (a collective the first time: every rank calls it)."""
        if self._stats is None:
            self._stats = real_stats(self.shard_set, self.extractor, self.identity, self.split, self.batch_size,
                                     self.device)  # fmt: skip
        return self._stats

    def stats_by_class(self) -> list[FeatureStats]:
        """The split's feature statistics per class (per finding), a collective the first time."""
        if self._by_class is None:
            self._by_class = real_stats_by_class(self.shard_set, self.extractor, self.identity, self.split,
                                                 self.batch_size, self.device)  # fmt: skip
        return self._by_class

    def images(self, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images, labels): the first `limit` images of the split (the shard writer shuffled
        them), read by this rank alone."""
        if limit not in self._images:
            self._images[limit] = read_split(self.shard_set, self.split, limit=limit)
        return self._images[limit]


@dataclass
class MetricInputs:
    """One checkpoint's evaluation: `n` images of `sampler` (image i as hpcgan/models/latents.py
    numbers it) against `real`. `main`: this rank writes the result; metrics without collectives
    run there only."""

    real: RealSide
    sampler: LatentSampler
    n: int
    diversity_pairs: int = 128
    main: bool = True
    class_probs_wanted: bool = False  # gather the Inception Score's sums during the one pass
    _fake: FeatureStats | None = None
    _class_probs: ClassProbStats | None = None

    @property
    def has_logits(self) -> bool:
        return hasattr(self.real.extractor, "logits_from_features")

    def fake(self) -> FeatureStats:
        """The generated images' feature statistics (a collective the first time)."""
        if self._fake is None:
            if self.class_probs_wanted and self.has_logits:
                self._class_probs = ClassProbStats(INCEPTION_CLASSES)
            self._fake = fake_stats(self.sampler.at, self.n, self.real.extractor, self.real.batch_size,
                                    self.real.device, class_probs=self._class_probs)  # fmt: skip
        return self._fake

    def class_probs(self) -> ClassProbStats:
        """The Inception Score's sums from the pass of `fake()`."""
        self.fake()
        if self._class_probs is None:
            raise RuntimeError("class probabilities were not gathered (class_probs_wanted=False or no logits)")
        return self._class_probs
