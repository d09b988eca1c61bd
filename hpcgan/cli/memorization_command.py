"""`hpcgan memorization RUN`: does the run's generator copy its training images? Nearest-neighbour
distances in feature space against the real-to-real baseline, into RUN/memorization/. Parsing and
printing only: the work is hpcgan/trained/memorization.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpcgan.console import console, progress_bar


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


def run_memorization(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from hpcgan.trained import memorization

    fields_ = fields(memorization.MemorizationOptions)
    options = memorization.MemorizationOptions(**{f.name: getattr(args, f.name) for f in fields_})  # flag = field
    report, out = memorization.run_memorization(args.run_path, options, phase=_phase)
    _print_summary(report, out)
    return 0


@contextmanager
def _phase(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    with progress_bar(description, total) as (advance, _set_total):
        yield advance


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
    from hpcgan.trained.memorization import PAIRS_NAME, REPORT_NAME

    lines.append(f"wrote {out / REPORT_NAME} and {out / PAIRS_NAME} (generated | nearest training image)")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)
