"""The metrics an evaluation can compute, by name: `hpcgan eval --metrics NAME,...`, the training-time
evaluator and `hpcgan eval --help` all read `METRICS`, which the `@metric` decorator fills.

A metric takes the shared inputs of one checkpoint's evaluation (hpcgan/eval/metric_inputs.py) and
returns the keys it adds to the result line. Each name says what is measured and against what; the
result records the protocol beside the values: the generated count, the real split, the extractor
and the metrics computed. Every rank runs the same metrics in the same order (the feature passes
are collectives); a metric without collectives computes on rank 0 only.

The module imports no torch when loaded (each metric imports its math when it runs): the CLI lists the
registry in `hpcgan eval --help`, and `hpcgan status` and `hpcgan report` must start without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from hpcgan.errors import UserError

if TYPE_CHECKING:
    from hpcgan.eval.metric_inputs import MetricInputs

DIVERSITY_SEED = 1_000_000  # latent seed of the MS-SSIM pairs: other images than the feature metrics' seed 0


MetricFn = Callable[["MetricInputs"], dict[str, Any]]


@dataclass(frozen=True)
class Metric:
    name: str
    compute: MetricFn
    summary: str  # one line for `hpcgan eval --help`: what it measures, against what
    # What it needs that an evaluation may lack: the reason (naming the flag to change), else None.
    missing: Callable[[MetricInputs], str | None]


METRICS: dict[str, Metric] = {}


def metric(summary: str, missing: Callable[[MetricInputs], str | None] = lambda x: None
           ) -> Callable[[MetricFn], MetricFn]:  # fmt: skip
    """Register the decorated function under its own name; `missing` says when it cannot run."""

    def register(fn: MetricFn) -> MetricFn:
        if fn.__name__ in METRICS:
            raise ValueError(f"metric {fn.__name__} registered twice")
        METRICS[fn.__name__] = Metric(fn.__name__, fn, summary, missing)
        return fn

    return register


@metric("FID, and KID with its spread over subsets: generated features against the real split's")
def fid_kid(x: MetricInputs) -> dict[str, Any]:
    from hpcgan.eval.evaluate import evaluate

    return evaluate(x.real.stats(), x.fake(), with_precision_recall=False)


@metric("k-NN (k=3) precision and recall against half the real features, beside the other real half's")
def precision_recall(x: MetricInputs) -> dict[str, Any]:
    from hpcgan.eval.evaluate import precision_recall_beside_real

    return precision_recall_beside_real(x.real.stats().features(), x.fake().features())


@metric("share of generated images with a near twin among them, beside the same share among real images")
def near_duplicates(x: MetricInputs) -> dict[str, Any]:
    from hpcgan.eval.evaluate import near_duplicates_beside_real

    return near_duplicates_beside_real(x.real.stats().features(), x.fake().features())


@metric("Inception Score of the generated images (needs --extractor inception: its class logits)",
        missing=lambda x: None if x.has_logits else "needs an extractor with class logits (--extractor inception)")
def inception_score(x: MetricInputs) -> dict[str, Any]:
    mean, std = x.class_probs().score()
    return {"inception_score": mean, "inception_score_std": std}


@metric("mean MS-SSIM of same-class generated pairs, beside same-class real pairs (--diversity-pairs)",
        missing=lambda x: None if x.diversity_pairs > 0 else "needs --diversity-pairs 1 or more")
def ms_ssim_diversity(x: MetricInputs) -> dict[str, Any]:
    """Class by class for a conditional generator, so that class differences do not pass for
    diversity; the real pairs are the first images of the split (the shard writer shuffled them)."""
    if not x.main:
        return {}  # no collectives in it: rank 0 alone computes it
    import torch

    from hpcgan.data.label_sets import class_mask
    from hpcgan.eval.diversity import mean_ms_ssim

    sampler = replace(x.sampler, seed=DIVERSITY_SEED)
    classes = sampler.classes
    real_images, real_labels = x.real.images(4 * x.diversity_pairs)
    fake_scores, real_scores = [], []
    for c in range(classes):
        share = max(1, x.diversity_pairs // classes)
        fake = sampler.of_class(c, torch.arange(2 * share))
        mine = real_images[class_mask(real_labels, c)] if classes > 1 else real_images
        half = min(share, len(mine) // 2)
        fake_scores.append((mean_ms_ssim(fake[:share], fake[share:]), share))
        if half:
            real_scores.append((mean_ms_ssim(mine[:half], mine[half : 2 * half]), half))

    def weighted(scores: list[tuple[float, int]]) -> float:
        return sum(v * w for v, w in scores) / sum(w for _, w in scores) if scores else float("nan")

    return {"ms_ssim": weighted(fake_scores), "ms_ssim_real": weighted(real_scores)}


@metric("FID per class (per finding of a multi-label set): the real images with it against generated ones "
        "asked for it", missing=lambda x: None if x.sampler.num_classes else "needs a conditional generator")
def fid_per_finding(x: MetricInputs) -> dict[str, Any]:
    from functools import partial

    from hpcgan.eval.distances import fid
    from hpcgan.eval.evaluate import fake_stats

    real = x.real.stats_by_class()
    names = x.real.shard_set.classes
    share = max(2, x.n // len(names))  # generated images per class
    result = {}
    for c, name in enumerate(names):
        if real[c].n < 2:
            continue  # no real images of it in the split: nothing to compare with
        fake = fake_stats(partial(x.sampler.of_class, c), share, x.real.extractor, x.real.batch_size, x.real.device)
        result[name] = {"fid": fid(real[c], fake), "n_real": real[c].n, "n_fake": fake.n}
    return {"fid_per_finding": result}


def parse_metrics(text: str | None, flag: str = "--metrics") -> tuple[str, ...] | None:
    """NAME,NAME,... -> the names, checked against the registry; None (all that apply) for None."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise UserError(f"{flag} {text}: expected names from {', '.join(METRICS)}")
    return names


def applicable(names: Sequence[str] | None, x: MetricInputs, flag: str = "--metrics") -> list[str]:
    """The metrics to run: every registered one that applies when `names` is None; else `names`,
    each of which must apply (one line naming the first that cannot)."""
    chosen = []
    for name in names if names is not None else METRICS:
        reason = METRICS[name].missing(x)
        if reason and names is not None:
            raise UserError(f"{flag} {name}: {reason}")
        if not reason:
            chosen.append(name)
    return chosen


def compute(names: Sequence[str] | None, x: MetricInputs, flag: str = "--metrics") -> dict[str, Any]:
    """The result of metrics `names` (None: every registered one that applies) on `x`, with the
    protocol: {"extractor", "split", "n_fake", "metrics"} and each metric's keys."""
    chosen = applicable(names, x, flag)
    x.class_probs_wanted = "inception_score" in chosen
    result: dict[str, Any] = {"extractor": x.real.identity, "split": x.real.split}
    for name in chosen:
        result |= METRICS[name].compute(x)
    return {**result, "n_fake": x.n, "metrics": chosen}


def describe_metrics() -> str:
    """The registry for people, one metric a line (for `hpcgan eval --help`)."""
    width = max(map(len, METRICS))
    return "\n".join(f"  {m.name:<{width}}  {m.summary}" for m in METRICS.values())
