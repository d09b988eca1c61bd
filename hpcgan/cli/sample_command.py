"""`hpcgan sample RUN --n N --out DIR`: export a synthetic dataset from a trained run's generator."""

from __future__ import annotations

import argparse
from pathlib import Path

from hpcgan.console import console, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="export a synthetic dataset (PNG folders or a shard set) from a trained run's generator",
        description="Draw images from the run's EMA generator (G if the run kept no EMA). A shard set "
        "export (--format shards) is read by `hpcgan train --data` and `hpcgan inspect` like any other.",
    )
    p.add_argument("run_path", type=Path, metavar="RUN", help="run directory (newest valid checkpoint) or a .pt file")
    p.add_argument(
        "--n",
        type=int,
        required=True,
        help="total images; a conditional run's are split evenly across its classes (remainder to the first "
        "classes), with --class all N are of that class",
    )
    p.add_argument("--class", dest="class_name", default=None, metavar="NAME", help="only this class (conditional)")
    p.add_argument("--out", type=Path, required=True, help="output folder; must be new or empty")
    # Not argparse choices: a bad value should be the usual one-line error, not usage + error.
    p.add_argument("--format", default="png", help="png (OUT/<class>/<class>-000000.png) or shards (a shard set)")
    p.add_argument("--seed", type=int, default=0, help="latent seed (>= 0); the same seed gives byte-identical output")
    p.add_argument("--batch-size", type=int, default=64, help="images per generator call")
    p.add_argument("--shard-size", default="1000", help="with --format shards: max images (1000) or bytes (500MB)")
    p.set_defaults(run=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from hpcgan.trained.export import check_options, export_samples
    from hpcgan.trained.generator import load_generator

    check_options(args.n, args.format, args.batch_size, args.seed)
    gen = load_generator(args.run_path)
    with progress_bar(f"sampling {args.out}", total=args.n) as (advance, _):
        result = export_samples(
            gen,
            args.out,
            args.n,
            fmt=args.format,
            class_name=args.class_name,
            seed=args.seed,
            batch_size=args.batch_size,
            shard_size=args.shard_size,
            progress=advance,
        )
    generator = "EMA generator" if gen.which == "ema" else "generator (no EMA in this run)"
    counts = ", ".join(f"{c} {n}" for c, n in zip(result.classes, result.counts, strict=True) if n)
    done = " (already exported, nothing to do)" if result.already_done else ""
    console.print(
        f"[bold]{result.out}[/]: {sum(result.counts)} synthetic images ({counts}) as {result.format} from "
        f"{gen.checkpoint} at step {gen.step}, {generator}, seed {args.seed}{done}",
        soft_wrap=True,
    )
    if result.index:
        console.print(f"content hash {result.index['content_hash'][:16]}")
    return 0
