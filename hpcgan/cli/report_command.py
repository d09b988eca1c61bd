"""`hpcgan report RUN|SWEEP`: a static HTML page of a run (sample timeline, curves with its
requeues and divergences, FID/KID, environment, config) or of a sweep (a sortable table of runs
and their curves overlaid), plus TensorBoard scalars with --tensorboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from hpcgan.console import console, progress_bar
from hpcgan.errors import UserError


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
    from hpcgan.cli.report.build import build_run_report, build_sweep_report, find_sources  # loads matplotlib
    from hpcgan.cli.report.collect import is_run

    if args.grids < 1:
        raise UserError(f"--grids {args.grids}: expected at least 1")
    runs = find_sources(args.path)
    if args.tensorboard:
        from hpcgan.cli.report.tensorboard import check_available

        check_available()  # before anything is written
    single = is_run(args.path)
    try:
        if single:
            tb = (args.out or args.path) / "tensorboard" if args.tensorboard else None
            index = build_run_report(args.path, args.out, grids=args.grids, tensorboard_dir=tb).page
        else:
            with progress_bar(f"reports of {len(runs)} runs", total=len(runs)) as (advance, _):
                index = build_sweep_report(args.path, runs, args.out, tensorboard=args.tensorboard, grids=args.grids,
                                           progress=advance)  # fmt: skip
    except OSError as exc:  # a write failing half way (disk full, quota, permissions below the folder)
        where = exc.filename or args.out or args.path
        raise UserError(f"{where}: cannot write the report ({exc.strerror or exc})") from None
    if args.tensorboard:
        # TensorBoard finds every run's RUN/tensorboard under a sweep folder.
        logdir = (args.out or args.path) / "tensorboard" if single or args.out else args.path
        console.print(f"tensorboard scalars: tensorboard --logdir {logdir}", highlight=False)
    print(index)  # the result, on stdout
    return 0
