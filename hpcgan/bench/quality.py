"""`python -m hpcgan.bench quality`: which GAN makes the most useful synthetic radiographs from a
small real set, at equal wall-clock?

Default data: the 703 real Kermany chest X-rays beside the repository (../shared/data/kermany-cxr;
580 train, 123 test, patient-disjoint), sharded at 64 px, conditional on NORMAL / PNEUMONIA.
Each arm (hpcgan/bench/quality_arms.py) trains for the same share of `--minutes`, then:

- diversity, each beside the same measure on real images (hpcgan eval): precision and recall
  against one half of the real images (the real row: the other half), near-duplicates among the
  samples, MS-SSIM of same-class pairs; and FID/KID with the best extractor available (inception
  with its weights on disk, else xrv, else the seeded random one, which compares arms only);
- the near-copy fraction of the memorisation check (generated vs nearest training image);
- train on synthetic, test on real: a small classifier trained once per seed on each arm's
  synthetic images (as many as the real training set, in its class mix), tested on the real test
  split, beside one trained on the real images; and real + synthetic against real alone (the
  augmentation gain), paired by seed. The real arm is trained once and shared by every arm.
- its last sample grid, copied to OUT/grids/<arm>.png for a person to look at.

A table goes to stderr, one JSON line to stdout, both also into OUT/. It is a benchmark, not a test:
the default budget is about 40 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hpcgan.bench.quality_arms import calibrate, evaluate_arm, final_grid, quality_arms, reusable, train_for
from hpcgan.bench.quality_tstr import tstr_all
from hpcgan.console import console
from hpcgan.errors import UserError

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kermany-cxr"
TRAIN_SHARE = 0.7  # of --minutes for training (the rest: calibration, evaluation, classifiers)
TARGETS = {"recall_vs_real": 0.5, "near_duplicates_vs_real": 2.0, "ms_ssim_within": 0.1, "auc_vs_real": 0.95}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="a labelled dataset folder (sharded at --size) or a shard set (default: Kermany)")
    parser.add_argument("--size", type=int, default=64, help="px (default 64)")
    parser.add_argument("--minutes", type=float, default=40.0, help="the whole benchmark's budget (default 40)")
    parser.add_argument("--out", type=Path, default=Path("bench-quality"), help="runs, grids and results")
    parser.add_argument("--arms", default="", help="comma-separated subset of: seed-acgan, cgan-recipe, r3gan, "
                        "r3gan-ada (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="classifier trainings per arm (for the intervals)")
    parser.add_argument("--classifier-steps", type=int, default=300)
    parser.add_argument("--n", type=int, default=2000, help="generated images for FID/KID and diversity")
    parser.add_argument("--weights", default=None, metavar="FILE", help="extractor weights (inception or xrv)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an arm's finished run in OUT/runs from an earlier invocation with the same "
                        "settings instead of training it again (evaluation runs anew)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Train each arm for the same wall-clock on real radiographs; diversity, FID, TSTR, memorisation, grids."""
    started = time.perf_counter()
    arms = _chosen_arms(args)
    if args.minutes <= 0 or args.seeds < 2 or args.classifier_steps < 1 or args.n < 8:
        raise UserError("expected --minutes > 0, --seeds >= 2 (for intervals), --classifier-steps >= 1, --n >= 8")
    args.out.mkdir(parents=True, exist_ok=True)
    shards = _shards(args)
    extractor, weights = _best_extractor(args.weights)
    seconds = args.minutes * 60 * TRAIN_SHARE / len(arms)
    results: dict[str, dict[str, Any]] = {}
    with _progress() as progress:
        for arm in arms:
            task = progress.add_task(f"{arm.key}: calibrating", total=None)
            run_dir = args.out / "runs" / arm.key
            trained = reusable(run_dir, arm, seconds) if args.reuse else None
            if trained is None:
                rate = calibrate(arm, shards, args.out / "scratch")
                shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run per benchmark
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                progress.update(task, description=f"{arm.key}: training {seconds / 60:.1f} min")
                show = lambda step, steps, t=task: progress.update(t, completed=step, total=steps)  # noqa: E731
                trained = train_for(arm, shards, run_dir, seconds, rate, show)
            progress.update(task, description=f"{arm.key}: evaluating")
            evaluated = evaluate_arm(run_dir, extractor, weights, args.n, memorization_n=min(args.n, 1000))
            grid = final_grid(run_dir)
            copied = None
            if grid is not None:
                copied = args.out / "grids" / f"{arm.key}.png"
                copied.parent.mkdir(exist_ok=True)
                shutil.copyfile(grid, copied)
            results[arm.key] = {"label": arm.label, "gan": arm.gan, "overrides": list(arm.overrides), **trained,
                                "eval": evaluated, "grid": str(copied) if copied else None}  # fmt: skip
            progress.update(task, description=f"{arm.key}: done")
        task = progress.add_task("classifiers (tstr, augment)", total=None)
        tstr = tstr_all({k: args.out / "runs" / k for k in results}, args.seeds, args.classifier_steps,
                        lambda done, total: progress.update(task, completed=done, total=total))  # fmt: skip
    for key, scores in tstr["arms"].items():
        results[key]["tstr"] = scores
    summary = _summary(args, extractor, results, tstr, time.perf_counter() - started)
    _print_table(summary, args.out)
    line = json.dumps(summary)
    (args.out / "quality.json").write_text(line + "\n")
    print(line)
    return 0


def _chosen_arms(args: argparse.Namespace) -> list[Any]:
    arms = quality_arms(args.size)
    if not args.arms:
        return arms
    wanted = [a.strip() for a in args.arms.split(",") if a.strip()]
    known = {a.key for a in arms}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise UserError(f"--arms {','.join(unknown)}: expected some of {', '.join(sorted(known))}")
    return [a for a in arms if a.key in wanted]


def _shards(args: argparse.Namespace) -> Path:
    """A shard set at --size: --data itself, or --data sharded into OUT/shards-<size> (once)."""
    from hpcgan.data.index import ShardSet

    data = args.data
    if not data.exists():
        raise UserError(f"--data {data}: no such folder (the default is the Kermany sample beside the repository, "
                        "../shared/data/kermany-cxr; pass a labelled dataset or a shard set)")  # fmt: skip
    if (data / "index.json").is_file():
        shard_set = ShardSet.open(data)
        if shard_set.image_size != args.size:
            raise UserError(f"--data {data}: a {shard_set.image_size} px shard set; --size is {args.size}")
        return data
    out = args.out / f"shards-{args.size}"
    if not (out / "index.json").is_file():
        from hpcgan.bench.quality_arms import _hpcgan, _run

        _run(_hpcgan("shard", data, out, "--size", args.size), f"hpcgan shard {data}")
    shard_set = ShardSet.open(out)
    if len(shard_set.classes) < 2 or "test" not in shard_set.splits:
        raise UserError(f"--data {data}: needs two or more classes and a test split (train-on-synthetic is tested on "
                        "real held-out images)")  # fmt: skip
    return out


def _best_extractor(weights: str | None) -> tuple[str, str | None]:
    """inception (its weights on disk), else xrv (installed, weights on disk), else random."""
    from hpcgan.eval.extractors import build_extractor
    from hpcgan.eval.inception import find_weights

    try:
        return "inception", str(find_weights(weights))
    except UserError:
        pass
    try:
        build_extractor("xrv", weights=weights)
        return "xrv", weights
    except UserError:
        return "random", None


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)  # fmt: skip


def _summary(args: argparse.Namespace, extractor: str, results: dict[str, Any], tstr: dict[str, Any],
             seconds: float) -> dict[str, Any]:  # fmt: skip
    real_auc = tstr["real"]["auc"]["mean"]
    met: dict[str, dict[str, bool]] = {}
    for key, r in results.items():
        e = r["eval"]
        met[key] = {
            "recall": e["recall"] >= TARGETS["recall_vs_real"] * e["recall_real"],
            # A real rate of 0 counts as one image of the real half: "twice nothing" asks for the impossible.
            "near_duplicates": e["near_duplicates"] <= TARGETS["near_duplicates_vs_real"] * max(
                e["near_duplicates_real"], 1 / e["diversity_n"]),
            "ms_ssim": abs(e["ms_ssim"] - e["ms_ssim_real"]) <= TARGETS["ms_ssim_within"],
            "auc_vs_real": r["tstr"]["synthetic"]["auc"]["mean"] >= TARGETS["auc_vs_real"] * real_auc,
            "augment_gain": r["tstr"]["gain"]["auc"]["mean"] - (r["tstr"]["gain"]["auc"]["ci"] or 0) > 0,
        }
    return {"bench": "quality", "data": str(args.data), "size": args.size, "minutes_budget": args.minutes,
            "minutes": round(seconds / 60, 1), "extractor": extractor, "n_generated": args.n, "seeds": args.seeds,
            "classifier_steps": args.classifier_steps, "real": tstr["real"], "n_test": tstr["n_test"],
            "arms": results, "targets": TARGETS, "met": met}  # fmt: skip


def _cell(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.3f} ± {stat['ci']:.3f}" if stat.get("ci") is not None else f"{stat['mean']:.3f}"


def _print_table(s: dict[str, Any], out: Path) -> None:
    table = Table(title=f"quality at {s['size']} px, {s['minutes']} min ({s['extractor']} features, "
                  f"{s['n_generated']} generated; classifiers {s['seeds']} seeds, mean ± 95% CI)")  # fmt: skip
    for column in ("arm", "steps", "FID", "KID", "precision", "recall", "near-dup", "MS-SSIM", "near-copy",
                   "TSTR AUC", "TSTR acc", "aug ΔAUC", "diversity"):
        table.add_column(column, justify="left" if column in ("arm", "diversity") else "right")
    first = next(iter(s["arms"].values()))["eval"]
    table.add_row("real images", "-", "-", "-", f"{first['precision_real']:.3f}", f"{first['recall_real']:.3f}",
                  f"{first['near_duplicates_real']:.3f}", f"{first['ms_ssim_real']:.3f}",
                  f"{first['near_copies_real']:.3f}", _cell(s["real"]["auc"]), _cell(s["real"]["accuracy"]), "-", "-",
                  style="dim")  # fmt: skip
    for key, r in s["arms"].items():
        e, t, ok = r["eval"], r["tstr"], s["met"][key]

        def mark(text: str, good: bool) -> str:
            return f"[green]{text}[/]" if good else f"[red]{text}[/]"

        table.add_row(r["label"], f"{r['steps']:,}", f"{e['fid']:.2f}", f"{e['kid']:.4f}", f"{e['precision']:.3f}",
                      mark(f"{e['recall']:.3f}", ok["recall"]),
                      mark(f"{e['near_duplicates']:.3f}", ok["near_duplicates"]),
                      mark(f"{e['ms_ssim']:.3f}", ok["ms_ssim"]), f"{e['near_copies']:.3f}",
                      mark(_cell(t["synthetic"]["auc"]), ok["auc_vs_real"]), _cell(t["synthetic"]["accuracy"]),
                      mark(_cell(t["gain"]["auc"]), ok["augment_gain"]), e["diversity"])  # fmt: skip
    err = Console(stderr=True, width=200)
    err.print(table)
    for key, r in s["arms"].items():
        err.print(f"{key}: grid {r['grid']}", highlight=False, soft_wrap=True)
    with (out / "quality-table.txt").open("w") as handle:
        Console(file=handle, width=200).print(table)
