"""`hpcgan sample RUN --n N --out DIR`: export a synthetic dataset from a trained run's generator
(on a multi-label run also --labels SET, --fill-to N, --allow-unseen; hpcgan/trained/export.py)."""

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
    # Checked by export.check_options, not argparse: a multi-label run may give --fill-to alone.
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="total images; a conditional run's are split evenly across its classes (remainder to the first "
        "classes), with --class all N are of that class; a multi-label run's have label sets drawn from its "
        "training data, or split evenly across the --labels sets",
    )
    p.add_argument("--class", dest="class_name", default=None, metavar="NAME", help="only this class (conditional)")
    p.add_argument("--labels", action="append", default=None, metavar="SET",
                   help="multi-label runs: a label set, findings joined by '|' (\"Effusion|Cardiomegaly\", any order; "
                   "\"No Finding\" for none); repeat for several")  # fmt: skip
    p.add_argument("--fill-to", type=int, default=None, metavar="N",
                   help="multi-label runs: add images until every finding (and No Finding) has N counting the run's "
                   "real training images; co-occurring findings drawn as the data has them")  # fmt: skip
    p.add_argument("--allow-unseen", action="store_true",
                   help="multi-label runs: allow label sets that never occur in the training data")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="output folder; must be new or empty")
    # Not argparse choices: a bad value should be the usual one-line error, not usage + error.
    p.add_argument("--format", default="png",
                   help="png (OUT/<class>/<class>-000000.png; multi-label: OUT/<set>/<set>-000000.png with '|' as "
                   "'+', and OUT/labels.csv) or shards (a shard set)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="latent seed (>= 0); the same seed gives byte-identical output")
    p.add_argument("--batch-size", type=int, default=64, help="images per generator call")
    p.add_argument("--shard-size", default="1000", help="with --format shards: max images (1000) or bytes (500MB)")
    p.set_defaults(run=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from hpcgan.trained.export import check_options, export_samples
    from hpcgan.trained.export_plan import plan_label_sets
    from hpcgan.trained.generator import load_generator

    check_options(args.n, args.format, args.batch_size, args.seed, args.fill_to)
    gen = load_generator(args.run_path)
    total = args.n
    if gen.multi_label and args.class_name is None:  # with --fill-to the total is known once the run is
        total = len(plan_label_sets(gen.label_sets, args.n, args.labels, args.fill_to, args.seed,
                                    args.allow_unseen).names)  # fmt: skip
    with progress_bar(f"sampling {args.out}", total=total) as (advance, _):
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
            labels=args.labels,
            fill_to=args.fill_to,
            allow_unseen=args.allow_unseen,
        )
    generator = "EMA generator" if gen.which == "ema" else "generator (no EMA in this run)"
    counts = ", ".join(f"{c} {n}" for c, n in zip(result.classes, result.counts, strict=True) if n)
    if result.label_sets:  # a multi-label run: images per class count each set under each of its findings
        sets = len(result.label_sets)
        counts = f"{sets} label set{'s' * (sets != 1)}; per finding: {counts}"
    done = " (already exported, nothing to do)" if result.already_done else ""
    console.print(
        f"[bold]{result.out}[/]: {result.images} synthetic images ({counts}) as {result.format} from "
        f"{gen.checkpoint} at step {gen.step}, {generator}, seed {args.seed}{done}",
        soft_wrap=True,
    )
    if args.fill_to is not None and result.added:
        added = ", ".join(f"{c} {n}" for c, n in result.added.items())
        console.print(f"--fill-to {args.fill_to} added (short of {args.fill_to} real training images): {added}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    if result.index:
        console.print(f"content hash {result.index['content_hash'][:16]}")
    return 0
