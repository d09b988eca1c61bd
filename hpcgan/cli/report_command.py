"""`hpcgan report RUN|SWEEP`: a static HTML page of a run (sample timeline, curves with its
requeues and divergences, FID/KID, environment, config) or of a sweep (a sortable table of runs
and their curves overlaid), plus TensorBoard scalars with --tensorboard. The pages are made by
hpcgan.report; this module only parses the arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from hpcgan.console import console, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="an HTML page of a run or a sweep: samples over training, curves, events")
    p.add_argument("path", type=Path, metavar="RUN_OR_SWEEP", help="a run dir, or a folder of runs (a sweep)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the page (default RUN/report or SWEEP/report; a sweep's run pages then go to "
                        "OUT/runs/)")  # fmt: skip
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard scalars: RUN/tensorboard/ (OUT/tensorboard/ with --out)")  # fmt: skip
    p.add_argument("--grids", type=int, default=16, help="sample grids on the timeline (evenly spaced; default 16)")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from hpcgan.report.build import make_report  # loads matplotlib

    report = make_report(args.path, args.out, tensorboard=args.tensorboard, grids=args.grids, progress=progress_bar)
    if report.tensorboard is not None:
        console.print(f"tensorboard scalars: tensorboard --logdir {report.tensorboard}", highlight=False)
    print(report.page)  # the result, on stdout
    return 0
