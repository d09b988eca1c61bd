"""`hpcgan tstr RUN`: train a small classifier on a conditional run's synthetic images and test it
on real held-out ones (or compare real against real + synthetic with --mode augment)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hpcgan.console import console, progress_bar
from hpcgan.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tstr",
        help="train on synthetic, test on real: a classifier's accuracy/F1/AUC from a conditional run's samples",
        description="Mode tstr trains one classifier on synthetic images and one on the run's real training "
        "images (the baseline); mode augment trains on real and on real + synthetic. Both are tested on the "
        "same real held-out images, once per seed; results go to RUN/tstr/<mode>-step<N>-<test set>-<split>.json.",
    )
    p.add_argument("run_path", type=Path, metavar="RUN", help="run directory (newest valid checkpoint) or a .pt file")
    p.add_argument("--mode", default="tstr", help="tstr (synthetic vs real) or augment (real + synthetic vs real)")
    p.add_argument("--test", type=Path, default=None, metavar="SHARDS",
                   help="held-out real shard set (default: the run's own shard set)")  # fmt: skip
    p.add_argument("--test-split", default=None, help="split of --test (default: test if it has one, else val)")
    p.add_argument("--n", type=int, default=None,
                   help="synthetic images, in the real training set's class mix (default: as many)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=3, help="classifier trainings per arm (for the interval)")
    p.add_argument("--steps", type=int, default=500, help="classifier training steps")
    p.add_argument("--size", type=int, default=64, help="px the classifier sees")
    p.add_argument("--width", type=int, default=16, help="classifier width (first-stage channels)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(run=run_tstr)


def _check(args: argparse.Namespace) -> None:
    from hpcgan.eval.tstr import MODES

    if args.mode not in MODES:
        raise UserError(f"--mode {args.mode}: expected one of {', '.join(MODES)}")
    for name in ("seeds", "steps", "size", "width", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: expected at least 1")
    if args.n is not None and args.n < 1:
        raise UserError(f"--n {args.n}: expected at least 1 synthetic image")


def run_tstr(args: argparse.Namespace) -> int:
    import torch

    from hpcgan.atomic import write_json
    from hpcgan.data.index import ShardSet
    from hpcgan.data.read_split import read_split, resize_uint8
    from hpcgan.eval.classifier import ClassifierOptions
    from hpcgan.eval.tstr import MODES, compare
    from hpcgan.train.synthesize import load_generator, synthetic_set

    _check(args)
    gen = load_generator(args.run_path, "cpu")
    if not gen.conditional:
        raise UserError(
            f"RUN {args.run_path}: an unconditional run; tstr needs labelled synthetic images from a conditional "
            "one (cgan64, acgan256, or model.conditional=projection|aux)"
        )
    try:
        config = json.loads((gen.run_dir / "config.json").read_text())
        config["data"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"RUN {args.run_path}: no readable config.json with the run's data in {gen.run_dir}; "
                        "pass a run dir or a checkpoint inside RUN/checkpoints") from None  # fmt: skip
    real_set = ShardSet.open(config["data"])
    test_set = ShardSet.open(args.test or config["data"])
    split = args.test_split or ("test" if "test" in test_set.splits else "val")
    if split not in test_set.splits or (args.test is None and split == "train"):
        raise UserError(f"{test_set.root}: no held-out split ({split!r}); pass --test SHARDS [--test-split NAME]")
    classes = gen.run_classes
    if sorted(test_set.classes) != sorted(classes):
        raise UserError(f"--test {test_set.root}: classes {test_set.classes}, expected the run's {classes}")
    # Everything is read at the classifier's size: a 512 px set costs memory only at --size.
    test_images, test_labels = read_split(test_set, split, size=args.size)
    # The test set's label numbers -> the run's, by class name.
    test_labels = torch.tensor([classes.index(c) for c in test_set.classes])[test_labels]
    real = read_split(real_set, "train", size=args.size)
    n_synthetic = args.n or len(real[1])
    proportions = torch.bincount(real[1], minlength=len(classes)).double() / len(real[1])

    def synthetic(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = synthetic_set(gen, (proportions * n_synthetic).round().long().tolist(), seed)
        return resize_uint8(images, args.size), labels

    def real_plus_synthetic(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        fake = synthetic(seed)
        return torch.cat([real[0], fake[0]]), torch.cat([real[1], fake[1]])

    arm_sets = {"real": lambda seed: real, "synthetic": synthetic, "real+synthetic": real_plus_synthetic}
    arms = {name: arm_sets[name] for name in MODES[args.mode]}
    options = ClassifierOptions(args.size, args.width, args.steps, args.batch_size)
    seeds = list(range(args.seeds))
    total = len(seeds) * len(arms) * args.steps
    with progress_bar(f"tstr {args.mode}: {len(arms)} arms x {len(seeds)} seeds", total=total) as (advance, _):
        result = compare(arms, (test_images, test_labels), len(classes), seeds, options, advance)
    result.update(
        mode=args.mode, checkpoint=str(gen.checkpoint), step=gen.step, classes=classes,
        test=f"{test_set.root}:{split}", n_test=len(test_labels), n_real_train=len(real[1]),
        n_synthetic=n_synthetic, classifier=vars(options),
    )  # fmt: skip
    # Named by what it measured: another checkpoint or test set never overwrites an earlier result.
    out = gen.run_dir / "tstr" / f"{args.mode}-step{gen.step:07d}-{test_set.root.name}-{split}.json"
    out.parent.mkdir(exist_ok=True)
    write_json(out, result)
    _print(result, out)
    return 0


def _print(result: dict[str, Any], out: Path) -> None:
    import sys

    import torch
    from rich.console import Console
    from rich.table import Table

    from hpcgan.eval.classification_scores import METRICS

    def cell(stat: dict[str, Any]) -> str:
        return f"{stat['mean']:.3f}" + (f" ± {stat['ci']:.3f}" if stat["ci"] is not None else "")

    table = Table(title=f"{result['mode']}: tested on {result['n_test']} real images ({result['test']}), "
                  f"{len(result['runs']) // len(result['summary'])} seed(s), mean ± 95% CI")  # fmt: skip
    table.add_column("trained on")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for arm, stats in result["summary"].items():
        table.add_row(arm, *(cell(stats[m]) for m in METRICS))
    diff = result["difference"]
    table.add_row(diff["of"], *(cell(diff[m]) for m in METRICS), style="bold")
    # The result on stdout (progress on stderr); wide enough for the table in a log file too.
    stdout = Console(width=None if sys.stdout.isatty() else 120)
    stdout.print(table)
    for arm in result["summary"]:
        confusion = [r["confusion"] for r in result["runs"] if r["arm"] == arm]
        summed = torch.tensor(confusion).sum(0).tolist()
        stdout.print(f"confusion of {arm} (rows: true {result['classes']}; summed over seeds): {summed}",
                      highlight=False)  # fmt: skip
    console.print(f"written to {out}", highlight=False)
