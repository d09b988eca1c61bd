"""FID and KID of a generator against a shard set, with every rank of a job taking a share.

Real statistics are cached in the shard set's folder (`fid-stats/`), keyed by the index.json
content hash, the extractor's identity (its weights), the split, the resolution and the sample
count, and written atomically: a changed shard set or extractor gets a new key, so a stale cache is
never read. Generated images are numbered, and each rank draws its own numbers of the one sequence
(`fake_stats`); every rank calls `evaluate` (it runs collectives), and every rank gets the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hpcgan.data.index import ShardSet
from hpcgan.data.label_sets import class_mask
from hpcgan.data.loader import ShardLoader
from hpcgan.errors import UserError
from hpcgan.eval.distances import fid, kid
from hpcgan.eval.feature_stats import FeatureStats
from hpcgan.eval.inception_score import ClassProbStats
from hpcgan.eval.near_duplicates import near_duplicate_rates
from hpcgan.eval.precision_recall import precision_recall

# draw(indices) -> uint8 images [len(indices), 1, S, S]: the generated images with those numbers
# (hpcgan/models/latents.py: image i depends on i alone)
Draw = Callable[[torch.Tensor], torch.Tensor]
KID_KEEP = 2000  # features kept in all (not per rank) for KID and precision/recall


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def cache_path(shard_set: ShardSet, identity: str, split: str, n: int) -> Path:
    key = f"{split}-{identity}-{shard_set.image_size}px-n{n}-{shard_set.content_hash[:16]}.npz"
    return shard_set.root / "fid-stats" / key


@torch.no_grad()
def real_stats(
    shard_set: ShardSet, extractor: nn.Module, identity: str, split: str = "train", batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> FeatureStats:  # fmt: skip
    """Statistics of every image of `split` that divides evenly into the ranks' batches."""
    rank, world = _rank_world()
    loader = ShardLoader(shard_set, batch_size, split=split, rank=rank, world_size=world, seed=0)
    n = len(loader) * batch_size * world
    path = cache_path(shard_set, identity, split, n)
    cached = [path.is_file()]
    if world > 1:
        # Rank 0 decides for all: another job writing the cache between two ranks' checks would
        # otherwise leave one rank computing (and all-reducing) while the other loads.
        dist.broadcast_object_list(cached, src=0)
    if cached[0]:
        return FeatureStats.load(path)
    stats = FeatureStats(extractor.num_features, KID_KEEP)
    for images, _labels in loader:
        stats.update(extractor(images.to(device)))
    loader.close()
    total = stats.reduce()
    if rank == 0:
        path.parent.mkdir(exist_ok=True)
        total.save(path)
    if world > 1:
        dist.barrier()
    return total


@torch.no_grad()
def real_stats_by_class(
    shard_set: ShardSet, extractor: nn.Module, identity: str, split: str = "train", batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> list[FeatureStats]:  # fmt: skip
    """Per class (per finding of a multi-label set; an image counts in each of its classes), the
    feature statistics of the split's images, as `real_stats` reads them; cached beside them."""
    rank, world = _rank_world()
    loader = ShardLoader(shard_set, batch_size, split=split, rank=rank, world_size=world, seed=0)
    n = len(loader) * batch_size * world
    path = cache_path(shard_set, identity, split, n)
    paths = [path.with_name(f"{path.stem}-class{c}{path.suffix}") for c in range(len(shard_set.classes))]
    cached = [all(p.is_file() for p in paths)]
    if world > 1:
        dist.broadcast_object_list(cached, src=0)
    if cached[0]:
        return [FeatureStats.load(p) for p in paths]
    stats = [FeatureStats(extractor.num_features) for _ in shard_set.classes]
    for images, labels in loader:
        features = extractor(images.to(device))
        for c, per_class in enumerate(stats):
            mask = class_mask(labels, c).to(features.device)
            if mask.any():
                per_class.update(features[mask])
    loader.close()
    totals = [s.reduce() for s in stats]
    if rank == 0:
        path.parent.mkdir(exist_ok=True)
        for p, total in zip(paths, totals, strict=True):
            total.save(p)
    if world > 1:
        dist.barrier()
    return totals


@torch.no_grad()
def fake_stats(
    draw: Draw, n: int, extractor: nn.Module, batch_size: int = 64, device="cpu",
    class_probs: ClassProbStats | None = None,
) -> FeatureStats:  # fmt: skip
    """Statistics of generated images 0 .. n-1. The numbers go out in blocks of `batch_size`, block
    b to rank b % world_size: each rank draws its own numbers of the same sequence, so any world
    size (and, as image i depends on i alone, any batch size) evaluates the very same images. With
    `class_probs` (an extractor with `logits_from_features`), it also gathers the Inception Score's
    sums, all-reduced in place; image i goes to IS split i % splits, whatever the blocks."""
    rank, world = _rank_world()
    stats = FeatureStats(extractor.num_features, KID_KEEP)
    for block, start in enumerate(range(0, n, batch_size)):
        if block % world != rank:
            continue
        indices = torch.arange(start, min(start + batch_size, n))
        features = extractor(draw(indices).to(device))
        stats.update(features, first_row=start)  # kept rows: the first KID_KEEP images, on any world size
        if class_probs is not None:
            logits = extractor.logits_from_features(features)
            splits = (indices % class_probs.splits).to(logits.device)
            for split in splits.unique().tolist():
                class_probs.update(logits[splits == split], split)
    if class_probs is not None:
        class_probs.reduce()
    return stats.reduce()


def evaluate(real: FeatureStats, fake: FeatureStats, kid_subsets: int = 50, with_precision_recall: bool = True
             ) -> dict[str, Any]:  # fmt: skip
    real_f, fake_f = real.features(), fake.features()
    # Subsets of half the kept features at most, so that they differ and the spread means something.
    size = min(1000, len(real_f) // 2, len(fake_f) // 2)
    kid_mean, kid_std = kid(real_f, fake_f, subsets=kid_subsets, subset_size=max(size, 2))
    result = {"fid": fid(real, fake), "kid": kid_mean, "kid_std": kid_std}
    if with_precision_recall:
        result |= diversity_measures(real_f, fake_f)
    return {**result, "n_real": real.n, "n_fake": fake.n}


def diversity_halves(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reference, real_half, fake_m): the real features split in halves, one the reference, the other
    measured like the generated ones, and as many generated features as that half holds (k-NN radii
    and nearest-neighbour distances depend on the set size, so only equal sizes compare)."""
    m = min(len(real) // 2, len(fake))
    if m <= 3:
        raise UserError(f"diversity measures need at least 8 real and 4 generated features; got {len(real)} and "
                        f"{len(fake)}")  # fmt: skip
    return real[:m], real[m : 2 * m], fake[:m]


def precision_recall_beside_real(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """k-NN precision/recall of `fake` and of the real half against the reference half."""
    reference, real_half, fake_m = diversity_halves(real, fake)
    precision, recall = precision_recall(reference, fake_m)
    precision_real, recall_real = precision_recall(reference, real_half)
    return {"precision": precision, "recall": recall, "precision_real": precision_real, "recall_real": recall_real,
            "diversity_n": len(fake_m)}  # fmt: skip


def near_duplicates_beside_real(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """The near-duplicate rate of `fake` beside that of the real half (hpcgan/eval/near_duplicates.py)."""
    reference, real_half, fake_m = diversity_halves(real, fake)
    return {**near_duplicate_rates(reference, real_half, fake_m), "diversity_n": len(fake_m)}


def diversity_measures(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Precision/recall and near-duplicates of `fake`, each beside the same measure on real images."""
    return {**precision_recall_beside_real(real, fake), **near_duplicates_beside_real(real, fake)}
