"""`hpcgan tstr RUN`: train a small classifier on a conditional run's synthetic images and test it
on real held-out ones (or compare real against real + synthetic with --mode augment). Parsing and
printing only: the work is hpcgan/trained/tstr.py. A multi-label run's classifier has one sigmoid
output per finding and is scored by ROC AUC per finding and macro AUC."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpcgan.console import console, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tstr",
        help="train on synthetic, test on real: a classifier's accuracy/F1/AUC from a conditional run's samples",
        description="Mode tstr trains one classifier on synthetic images and one on the run's real training "
        "images (the baseline); mode augment trains on real and on real + synthetic. Both are tested on the "
        "same real held-out images, once per seed; results go to RUN/tstr/<mode>-step<N>-<test set>-<split>.json. "
        "On a multi-label run the classifier has a sigmoid output per finding (binary cross-entropy; No Finding "
        "is no output) and reports ROC AUC per finding and macro AUC.",
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


def run_tstr(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from hpcgan.trained import tstr

    options = tstr.TstrOptions(**{f.name: getattr(args, f.name) for f in fields(tstr.TstrOptions)})  # flag = field
    result, out = tstr.run_tstr(args.run_path, options, phase=_phase)
    (_print_findings if result.get("label_mode") == "multi" else _print)(result, out)
    return 0


@contextmanager
def _phase(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    with progress_bar(description, total) as (advance, _set_total):
        yield advance


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


def _print_findings(result: dict[str, Any], out: Path) -> None:
    """A multi-label result: macro AUC and AUC per finding per arm, mean ± 95% CI over seeds."""
    import sys

    from rich.console import Console
    from rich.table import Table

    def cell(stat: dict[str, Any] | None) -> str:
        if stat is None:
            return "n/a"
        return f"{stat['mean']:.3f}" + (f" ± {stat['ci']:.3f}" if stat["ci"] is not None else "")

    findings = result["findings"]
    table = Table(title=f"{result['mode']}: ROC AUC on {result['n_test']} real images ({result['test']}), "
                  f"{len(result['runs']) // len(result['summary'])} seed(s), mean ± 95% CI")  # fmt: skip
    table.add_column("trained on")
    table.add_column("macro AUC", justify="right")
    for finding in findings:
        table.add_column(finding, justify="right")
    rows = [(arm, stats, None) for arm, stats in result["summary"].items()]
    rows.append((result["difference"]["of"], result["difference"], "bold"))
    for name, stats, style in rows:
        table.add_row(name, cell(stats["macro_auc"]), *(cell(stats["auc_per_finding"][f]) for f in findings),
                      style=style)  # fmt: skip
    stdout = Console(width=None if sys.stdout.isatty() else 160)
    stdout.print(table)
    for finding, reason in result["undefined"].items():
        stdout.print(f"{finding}: AUC n/a, {reason} ({result['n_test']} images); left out of the macro AUC",
                     highlight=False)  # fmt: skip
    console.print(f"written to {out}", highlight=False)
