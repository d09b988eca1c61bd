"""`hpcgan memorization RUN`: does the run's generator copy its training images? Nearest-neighbour
distances in feature space against the real-to-real baseline, into RUN/memorization/."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpcgan.console import console, progress_bar
from hpcgan.errors import UserError

REPORT_NAME = "memorization.json"
PAIRS_NAME = "closest-pairs.png"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "memorization",
        help="does the generator copy training images? (nearest neighbours, into RUN/memorization/)",
        description="For each generated image, its nearest training image in feature space; the distances "
        "against the real-to-real baseline (held-out and leave-one-out training images), the fraction of "
        "near copies, and a picture of the closest pairs.",
    )
    p.add_argument("run_path", metavar="RUN", type=Path, help="run directory (newest valid checkpoint) or a .pt file")
    p.add_argument("--n", type=int, default=2000, help="generated images")
    p.add_argument("--extractor", default="random", help="feature extractor: inception, xrv or random (offline)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="extractor weights file (inception: else $HPCGAN_INCEPTION_WEIGHTS, hub cache)")  # fmt: skip
    p.add_argument("--split", default="train", help="the real images the generator may have copied")
    p.add_argument("--threshold", type=float, default=None,
                   help="near copy: NN distance < THRESHOLD x the real leave-one-out median (0.5)")  # fmt: skip
    p.add_argument("--pairs", type=int, default=16, help="closest pairs to list and draw")
    p.add_argument("--out", type=Path, default=None, help="output folder (default RUN/memorization/step-N)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(run=run_memorization)


@contextmanager
def _phase(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    with progress_bar(description, total) as (advance, _set_total):
        yield advance


def _heldout_split(shard_set: Any, split: str) -> str | None:
    """The real images the generator never saw: the first non-empty one of val, test, train that is not `split`."""
    for name in ("val", "test", "train"):
        if name != split and name in shard_set.splits and shard_set.count(name) > 0:
            return name
    return None


def run_memorization(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from hpcgan.atomic import write_json
    from hpcgan.data.index import ShardSet
    from hpcgan.eval.extractors import build_extractor
    from hpcgan.eval.memorization import DEFAULT_THRESHOLD, check_memorization, split_loader
    from hpcgan.train.synthesize import load_generator

    if args.n < 1:
        raise UserError(f"--n {args.n}: expected at least 1 generated image (thousands for a clear picture)")
    if args.pairs < 1:
        raise UserError(f"--pairs {args.pairs}: expected at least 1")
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: expected at least 1")
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not threshold > 0:
        raise UserError(f"--threshold {args.threshold}: expected a fraction > 0 of the median real NN distance")
    extractor, identity = build_extractor(args.extractor, weights=args.weights)
    gen = load_generator(args.run_path, "cpu")
    config_path = gen.run_dir / "config.json"
    try:
        data = json.loads(config_path.read_text())["data"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{config_path}: unreadable run config ({exc}); is {gen.run_dir} a run directory?") from None
    shard_set = ShardSet.open(data)
    if shard_set.count(args.split) < 2:
        raise UserError(f"{shard_set.root}: split {args.split!r} has {shard_set.count(args.split)} image(s); "
                        "the real baseline needs at least 2")  # fmt: skip
    heldout_split = _heldout_split(shard_set, args.split)
    # Per checkpoint: checking another one never overwrites an earlier result.
    out = args.out or gen.run_dir / "memorization" / f"step-{gen.step:07d}"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    labels = len(gen.classes) if gen.conditional else 1

    def sample(n: int, seed: int) -> torch.Tensor:
        # The latents `hpcgan eval` draws: batch k from seed k, class k % classes.
        z = np.random.default_rng(seed).standard_normal((n, gen.z_dim))
        return torch.from_numpy(gen.images(z, seed % labels)).unsqueeze(1)

    started = time.perf_counter()
    train = split_loader(shard_set, args.split)
    heldout = split_loader(shard_set, heldout_split) if heldout_split else None
    report = check_memorization(sample, args.n, train, extractor, heldout=heldout, threshold=threshold,
                                pairs=args.pairs, batch_size=args.batch_size, phase=_phase,
                                pairs_png=out / PAIRS_NAME)  # fmt: skip
    train.close()
    report = {
        "run": str(gen.run_dir), "checkpoint": str(gen.checkpoint), "step": gen.step, "generator": gen.which,
        "extractor": identity, "data": str(shard_set.root), "split": args.split, "heldout_split": heldout_split,
        "train_order": "ShardLoader seed 0, one epoch, 1 rank", "generated_latents": "batch k: seed k, as hpcgan eval",
        "batch_size": args.batch_size, **report, "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    write_json(out / REPORT_NAME, report)
    _print_summary(report, out)
    return 0


def _quantile_line(name: str, q: dict[str, float]) -> str:
    return f"  {name:<34} p5 {q['p5']:.4g}  p25 {q['p25']:.4g}  median {q['p50']:.4g}  p95 {q['p95']:.4g}"


def _print_summary(r: dict[str, Any], out: Path) -> None:
    base, fp = r["baseline"], r["baseline_near_copy_fraction"]
    lines = [
        f"step {r['step']}: {r['n_generated']} generated vs {r['n_train']} {r['split']} images ({r['extractor']})",
        "nearest-neighbour distance to the training images:",
        _quantile_line("generated", r["generated"]),
        _quantile_line(f"real {r['split']}, leave-one-out", base["train_leave_one_out"]),
    ]
    if base["heldout"]:
        lines.append(_quantile_line(f"real {r['heldout_split']} (held out, {r['n_heldout']})", base["heldout"]))
    ratio = r["median_ratio"]
    lines.append(f"  median ratio generated/real {ratio:.3g}  (1: like real images; << 1: copying)"
                 if ratio is not None else "  median ratio: undefined (real median distance is 0)")  # fmt: skip
    real_fp = fp["heldout"] if fp["heldout"] is not None else fp["train_leave_one_out"]
    colour = "red" if r["near_copy_fraction"] > max(2 * real_fp, 0.01) else "green"
    lines.append(
        f"near copies (distance < {r['near_copy_threshold']:.4g} = {r['threshold']:g} x real median): "
        f"[{colour}]{r['near_copy_fraction']:.1%} of generated ({r['near_copies']}/{r['n_generated']})[/]; "
        f"real images {real_fp:.1%}"
    )
    lines.append(f"wrote {out / REPORT_NAME} and {out / PAIRS_NAME} (generated | nearest training image)")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)
