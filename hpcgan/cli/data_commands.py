"""`hpcgan shard`, `hpcgan phantom` and `hpcgan inspect`: parse, validate, hand off to hpcgan.data."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table

from hpcgan.console import console, progress_bar
from hpcgan.data.formats import DEFAULT_FORMAT, EXTENSIONS
from hpcgan.data.index import ShardSet
from hpcgan.data.inspect import SplitSummary, contact_sheet, summarise
from hpcgan.data.shard_options import SIZES, ShardOptions
from hpcgan.data.sources import LAYOUTS
from hpcgan.errors import UserError


def add_common_shard_options(p: argparse.ArgumentParser, default_size: int) -> None:
    p.add_argument("--size", type=int, default=default_size, help=f"output side in px, one of {SIZES}")
    p.add_argument("--format", default=DEFAULT_FORMAT, choices=sorted(EXTENSIONS), help="stored image format")
    p.add_argument("--shard-size", default="1000", help="max images per shard (1000) or bytes (500MB)")
    p.add_argument("--val-fraction", type=float, default=0.0, help="fraction held out as 'val' where no split given")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shard", help="shard a chest X-ray dataset into WebDataset tars")
    p.add_argument("src", type=Path, help="dataset folder, or a CSV manifest: path,label[,split] or path[,split] "
                   "and one 1/0/-1/blank column per finding (CheXpert)")  # fmt: skip
    p.add_argument("out", type=Path, help="output folder for the shard set")
    add_common_shard_options(p, 256)
    p.add_argument("--layout", default="auto", choices=LAYOUTS, help="how SRC is organised")
    p.add_argument("--classes", default=None, help="comma-separated classes to keep, in label order (multi: the "
                   "findings kept; an image's others are dropped, one left with none is No Finding)")  # fmt: skip
    p.add_argument("--fit", default="crop", choices=("crop", "pad"), help="centre-crop or letterbox to square")
    # No argparse choices for these two: a bad value is then one line of ours, not usage text.
    p.add_argument("--labels", default=None, help="single (a class per image) or multi (a set of findings per "
                   "image); default multi for nih and a CSV with finding columns, else single")  # fmt: skip
    p.add_argument("--uncertain", default=None, help="multi-label CSV: a -1 (uncertain) finding becomes zero "
                   "(default), one, or drop (the image is left out)")  # fmt: skip
    p.set_defaults(run=run_shard)

    p = sub.add_parser("phantom", help="generate procedural chest radiograph phantoms as shards")
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=1000, help="number of images")
    p.add_argument("--findings", action="store_true", help="multi-label: overlapping opacity, cardiomegaly, "
                   "effusion and pneumothorax, each at its own prevalence (default: normal/opacity)")  # fmt: skip
    add_common_shard_options(p, 256)
    p.set_defaults(run=run_phantom)

    p = sub.add_parser("inspect", help="counts, class balance and a contact sheet of a shard set")
    p.add_argument("shards", type=Path)
    p.add_argument("--per-class", type=int, default=8, help="samples per class on the contact sheet")
    p.add_argument("--sheet", type=Path, default=None, help="contact sheet path (default SHARDS/contact_sheet.png)")
    p.set_defaults(run=run_inspect)


def _options(args: argparse.Namespace) -> ShardOptions:
    return ShardOptions(
        size=args.size,
        fit=getattr(args, "fit", "crop"),
        format=args.format,
        shard_size=args.shard_size,
        val_fraction=args.val_fraction,
        seed=args.seed,
        workers=args.workers if args.workers is not None else len(os.sched_getaffinity(0)),
    )


def run_shard(args: argparse.Namespace) -> int:
    src, out = args.src.resolve(), args.out.resolve()
    if out == src or src in out.parents or out in src.parents:
        raise UserError(f"OUT {args.out}: inside or around the source {args.src}; expected a folder apart from it "
                        "(the shards would be read as source images, or the source pruned as shard leftovers)")
    from hpcgan.data.shard_images import shard_images  # the image codecs and workers load only here

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    with progress_bar(f"sharding {args.src}") as (advance, set_total):
        index = shard_images(args.src, args.out, _options(args), args.layout, classes, advance, set_total,
                             labels=args.labels, uncertain=args.uncertain)  # fmt: skip
    print_index_summary(args.out, index)
    return 0


def run_phantom(args: argparse.Namespace) -> int:
    from hpcgan.data.phantom import write_phantom_shards

    with progress_bar("rendering phantoms", total=args.n) as (advance, _):
        index = write_phantom_shards(args.out, args.n, _options(args), advance, findings=args.findings)
    print_index_summary(args.out, index)
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """The table and contact sheet of what is intact, then one line per problem; exit 1 if any."""
    shard_set = ShardSet.open(args.shards, check_files=False)  # missing and resized shards become lines below
    problems: list[str] = []
    title = f"{args.shards}  ({shard_set.image_size}x{shard_set.image_size} px, .{shard_set.extension})"
    summaries = summarise(shard_set, problems)
    if shard_set.multi_label:
        console.print(_finding_table(title, shard_set.classes, summaries))
        console.print(_label_set_table(summaries))
    else:
        console.print(_class_table(title, shard_set.classes, summaries))
    sheet = args.sheet or args.shards / "contact_sheet.png"
    split = "train" if "train" in shard_set.splits else shard_set.splits[0]
    try:
        contact_sheet(shard_set, sheet, per_class=args.per_class, split=split)
    except OSError as exc:
        raise UserError(f"--sheet {sheet}: cannot write the contact sheet ({exc.strerror or exc})") from None
    console.print(f"contact sheet: {sheet}")
    for line in problems:
        console.print(f"problem: {line}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        console.print(f"{args.shards}: {len(problems)} problem(s); intact samples only in the counts above",
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        return 1
    return 0


def _share(count: int, total: int) -> str:
    return f"{count} ({100 * count / max(total, 1):.0f}%)"


def _class_table(title: str, classes: list[str], summaries: list[SplitSummary]) -> Table:
    """A row per split, a column per class."""
    table = Table(title=title)
    for column in ("split", "images", "shards", "MB", *classes, "source short side px (min/median/max)"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for s in summaries:
        counts = [_share(s.histogram.get(c, 0), s.images) for c in classes]
        sides = "/".join(map(str, s.source_short_side))
        table.add_row(s.split, str(s.images), str(s.shards), f"{s.megabytes:.1f}", *counts, sides)
    return table


def _finding_table(title: str, classes: list[str], summaries: list[SplitSummary]) -> Table:
    """Multi-label: a column per split, a row per finding (an image with two findings counts in both,
    so a column's shares add up to more than 100%)."""
    table = Table(title=title)
    table.add_column("")
    for s in summaries:
        table.add_column(s.split, justify="right")
    table.add_row("images", *(str(s.images) for s in summaries))
    table.add_row("shards", *(str(s.shards) for s in summaries))
    table.add_row("MB", *(f"{s.megabytes:.1f}" for s in summaries))
    table.add_row("source short side px", *("/".join(map(str, s.source_short_side)) for s in summaries))
    table.add_section()
    for c in classes:
        table.add_row(c, *(_share(s.histogram.get(c, 0), s.images) for s in summaries))
    return table


def _label_set_table(summaries: list[SplitSummary], top: int = 10) -> Table:
    """The most common label sets over all splits, with their count in each."""
    totals: Counter = Counter()
    for s in summaries:
        totals.update(s.combinations)
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    table = Table(title=f"most common label sets (top {min(top, len(ranked))} of {len(ranked)})")
    table.add_column("label set")
    for s in summaries:
        table.add_column(s.split, justify="right")
    for name in ranked[:top]:
        table.add_row(name, *(_share(s.combinations.get(name, 0), s.images) for s in summaries))
    return table


def print_index_summary(out: Path, index: dict[str, Any]) -> None:
    total = sum(s["count"] for s in index["splits"].values())
    parts = [f"{name} {s['count']} in {len(s['shards'])} shard(s)" for name, s in index["splits"].items()]
    console.print(f"[bold]{out}[/]: {total} images ({', '.join(parts)}), classes {', '.join(index['classes'])}")
    if index["skipped"]:
        from hpcgan.data.shard_writer import SKIPPED_NAME

        console.print(f"[yellow]skipped {index['skipped']} unusable file(s): see {out / SKIPPED_NAME}[/]")
    else:
        console.print("skipped 0 files")
    console.print(f"content hash {index['content_hash'][:16]}")
