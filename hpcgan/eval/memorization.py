"""Does a generator copy its training images? Nearest neighbours (NN) in an extractor's feature space.

For every generated sample: the distance to its nearest training image. Alone that number means
nothing, so it is set against the real-to-real baseline: each training image's distance to its
nearest *other* training image (leave-one-out) and, when the shard set has a held-out split, each
held-out image's distance to its nearest training image. A generator that draws fresh images from
the data distribution looks like the held-out images; one that copies sits far below them.

Near copy: a generated sample whose NN distance is below `threshold` x the median leave-one-out
train-to-train NN distance (default 0.5: half the gap between two typical neighbouring real
images). The median, not a low percentile, because real training sets hold duplicates (follow-up
images of one patient): their low percentiles are near 0, and a threshold set there would flag
nothing. The same threshold is applied to the real images too: their near-copy fraction is the
false-positive rate, what "no copying" looks like with this data and extractor. (The d1/d2 ratio
test is not used: with near-duplicates in the training set, a copy's second neighbour is as close
as its first.)

Distances are Euclidean in float64 (exact copies come out as ~0, not as float32 round-off), one
chunk of query rows at a time, so memory stays bounded whatever the sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.errors import UserError
from hpcgan.eval.pairs_image import write_closest_pairs

# sample(n, seed) -> uint8 images [n, 1, S, S]; batch k of the generated set is sample(size, k).
Sampler = Callable[[int, int], torch.Tensor]
# A uint8 tensor [N, 1, S, S], a ShardLoader, or a re-iterable of image batches or (images, labels) pairs.
Images = torch.Tensor | ShardLoader | Iterable[Any]
# phase(description, total) -> a context yielding advance(n): the CLI's progress bars.
Phase = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]

QUANTILES = (5, 25, 50, 75, 95)
DEFAULT_THRESHOLD = 0.5  # x the median real leave-one-out NN distance; see the module docstring
CHUNK_BYTES = 64 << 20  # distance-matrix memory per chunk
READ_BATCH = 64


def nearest_neighbours(
    query: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False, chunk: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Distance and index of each query row's nearest reference row (CPU tensors [Nq]).

    `exclude_self`: query is reference, and row i may not match itself (leave-one-out). `chunk`:
    query rows per torch.cdist call (default: a CHUNK_BYTES distance matrix)."""
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1]:
        raise ValueError(f"features {tuple(query.shape)} and {tuple(reference.shape)}: expected [Nq, D] and [Nr, D]")
    if exclude_self and len(query) != len(reference):
        raise ValueError("exclude_self needs the query to be the reference")
    if len(reference) < 1 + exclude_self:
        raise ValueError(f"{len(reference)} reference rows: too few for a nearest neighbour")
    q = query.detach().to(dtype)
    r = reference.detach().to(q.device, dtype)
    chunk = chunk or max(1, CHUNK_BYTES // (r.element_size() * len(r)))
    distances = torch.empty(len(q), dtype=dtype)
    indices = torch.empty(len(q), dtype=torch.long)
    for start in range(0, len(q), chunk):
        d = torch.cdist(q[start : start + chunk], r)
        if exclude_self:
            rows = torch.arange(len(d), device=d.device)
            d[rows, rows + start] = float("inf")
        best, where = d.min(dim=1)
        distances[start : start + len(d)], indices[start : start + len(d)] = best.cpu(), where.cpu()
    return distances, indices


def quantiles(distances: torch.Tensor) -> dict[str, float]:
    d = distances.double().numpy()
    return {
        **{f"p{q}": float(v) for q, v in zip(QUANTILES, np.percentile(d, QUANTILES), strict=True)},
        "min": float(d.min()),
        "mean": float(d.mean()),
    }


def memorization_report(
    generated: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor | None = None,
    threshold: float = DEFAULT_THRESHOLD, pairs: int = 16,
) -> dict[str, Any]:  # fmt: skip
    """The report from features: generated [Ng, D], train [Nt, D] (Nt >= 2), held-out real [Nh, D] or None.

    `threshold` is relative: a near copy is closer to its NN than threshold x the median leave-one-out
    train NN distance. `pairs`: how many of the closest (generated, train) pairs to list."""
    if threshold <= 0:
        raise ValueError(f"threshold {threshold}: expected > 0")
    d_gen, i_gen = nearest_neighbours(generated, train)
    d_loo, _ = nearest_neighbours(train, train, exclude_self=True)
    d_held = nearest_neighbours(heldout, train)[0] if heldout is not None and len(heldout) else None
    gen_q, loo_q = quantiles(d_gen), quantiles(d_loo)
    real_median = loo_q["p50"]
    limit = threshold * real_median
    near = d_gen < limit
    order = torch.argsort(d_gen, stable=True)[: max(0, pairs)].tolist()
    return {
        "n_generated": len(d_gen),
        "n_train": len(d_loo),
        "n_heldout": 0 if d_held is None else len(d_held),
        "generated": gen_q,
        "baseline": {
            "train_leave_one_out": loo_q,
            "heldout": None if d_held is None else quantiles(d_held),
        },
        # ~1: as far from the training set as real images are; << 1: copying; > 1: off the data.
        "median_ratio": gen_q["p50"] / real_median if real_median > 0 else None,
        "threshold": threshold,
        "near_copy_threshold": limit,
        "near_copies": int(near.sum()),
        "near_copy_fraction": float(near.double().mean()),
        "baseline_near_copy_fraction": {
            "train_leave_one_out": float((d_loo < limit).double().mean()),
            "heldout": None if d_held is None else float((d_held < limit).double().mean()),
        },
        "closest_pairs": [
            {"generated": g, "train": int(i_gen[g]), "distance": float(d_gen[g]), "near_copy": bool(near[g])}
            for g in order
        ],
        "definition": "near copy: NN feature distance to the training set < threshold x the median "
        "leave-one-out train-to-train NN distance",
    }


def image_batches(source: Images, batch_size: int = READ_BATCH) -> Iterator[torch.Tensor]:
    """uint8 [B, 1, S, S] batches of `source` in its order, regrouped into `batch_size` images."""
    if isinstance(source, torch.Tensor):
        yield from source.split(batch_size)
        return
    pending: list[torch.Tensor] = []
    count = 0
    for item in source:
        images = item[0] if isinstance(item, tuple | list) else item
        pending.append(images)
        count += len(images)
        if count >= batch_size:
            joined = torch.cat(pending)
            whole = count - count % batch_size
            yield from joined[:whole].split(batch_size)
            pending, count = ([joined[whole:]] if whole < count else []), count - whole
    if count:
        yield torch.cat(pending)


@torch.no_grad()
def real_features(
    source: Images, extractor: nn.Module, batch_size: int = READ_BATCH, device: str | torch.device = "cpu",
    advance: Callable[[int], None] | None = None,
) -> torch.Tensor:  # fmt: skip
    out = []
    for images in image_batches(source, batch_size):
        out.append(extractor(images.to(device)).float().cpu())
        if advance:
            advance(len(images))
    if not out:
        return torch.empty((0, getattr(extractor, "num_features", 0)))
    return torch.cat(out)


@torch.no_grad()
def generated_features(
    sample: Sampler, n: int, extractor: nn.Module, batch_size: int = READ_BATCH, device: str | torch.device = "cpu",
    advance: Callable[[int], None] | None = None,
) -> torch.Tensor:  # fmt: skip
    """Features of `n` generated images: batch k = sample(size, k); hpcgan/trained/memorization.py draws them
    through the one latent sampler, so they are the first `n` images `hpcgan eval` draws."""
    out = []
    for k, start in enumerate(range(0, n, batch_size)):
        images = sample(min(batch_size, n - start), k)
        out.append(extractor(images.to(device)).float().cpu())
        if advance:
            advance(len(images))
    return torch.cat(out)


def _count(source: Images) -> int | None:
    if isinstance(source, torch.Tensor):
        return len(source)
    if isinstance(source, ShardLoader):
        return len(source) * source.batch_size
    return None


def _replayable(source: Images) -> Callable[[], Images]:
    """A way to read `source` again in the same order: a ShardLoader is rewound to where it started."""
    if isinstance(source, ShardLoader):
        start = source.state_dict()
        return lambda: (source.load_state_dict(start), source)[1]
    if iter(source) is source:  # type: ignore[arg-type]
        raise TypeError("train images: a one-shot iterator cannot be read twice; pass a tensor, loader or list")
    return lambda: source


def check_memorization(
    sample: Sampler, n: int, train: Images, extractor: nn.Module, *, heldout: Images | None = None,
    threshold: float = DEFAULT_THRESHOLD, pairs: int = 16, batch_size: int = READ_BATCH,
    device: str | torch.device = "cpu", phase: Phase | None = None, pairs_png: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Does `sample` copy `train`? `n` generated images against the training images (and, if given,
    held-out real images for the baseline) in `extractor`'s feature space: `memorization_report`.
    With `pairs_png`, also the picture of the closest pairs (`train` is then read twice)."""
    if n < 1:
        raise ValueError(f"n {n}: expected at least 1 generated image")
    reread = _replayable(train)
    phase = phase or (lambda _description, _total: nullcontext(None))
    with phase("training images", _count(train)) as advance:
        train_f = real_features(train, extractor, batch_size, device, advance)
    if len(train_f) < 2:
        raise UserError(f"{len(train_f)} training image(s): the real baseline needs at least 2")
    heldout_f = None
    if heldout is not None:
        with phase("held-out images", _count(heldout)) as advance:
            heldout_f = real_features(heldout, extractor, batch_size, device, advance)
    with phase("generated images", n) as advance:
        gen_f = generated_features(sample, n, extractor, batch_size, device, advance)
    report = memorization_report(gen_f, train_f, heldout_f, threshold, pairs)
    if pairs_png is not None and report["closest_pairs"]:
        with phase("closest pairs", None):
            generated, nearest = pair_images(report["closest_pairs"], sample, n, reread(), batch_size)
            write_closest_pairs(pairs_png, generated, nearest, report["closest_pairs"])
    return report


def pair_images(
    pairs: list[dict[str, Any]], sample: Sampler, n: int, train: Images, batch_size: int = READ_BATCH
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of report["closest_pairs"]: (generated [k, 1, S, S], train [k, 1, S', S']).

    Regenerates only the batches holding the generated ones (same `n` and `batch_size` as the
    check); `train` must give the images in the order the check read them."""
    generated: dict[int, torch.Tensor] = {}
    for k in sorted({p["generated"] // batch_size for p in pairs}):
        images = sample(min(batch_size, n - k * batch_size), k)
        for p in pairs:
            if p["generated"] // batch_size == k:
                generated[p["generated"]] = images[p["generated"] - k * batch_size]
    wanted = {p["train"] for p in pairs}
    found: dict[int, torch.Tensor] = {}
    offset = 0
    for images in image_batches(train, batch_size):
        for i in wanted & set(range(offset, offset + len(images))):
            found[i] = images[i - offset].clone()
        offset += len(images)
        if len(found) == len(wanted):
            break
    if len(found) != len(wanted):
        raise ValueError("train images: a second read gave fewer images than the first")
    return (
        torch.stack([generated[p["generated"]] for p in pairs]),
        torch.stack([found[p["train"]] for p in pairs]),
    )


def split_loader(shard_set: ShardSet, split: str) -> ShardLoader:
    """Every image of `split` exactly once, one process: the batch size divides the image count
    (a ShardLoader drops an epoch's last partial batch), and `image_batches` regroups tiny batches."""
    count = shard_set.count(split)
    batch = max((b for b in range(1, READ_BATCH + 1) if count % b == 0), default=1)
    return ShardLoader(shard_set, batch, split=split, seed=0, rank=0, world_size=1)
