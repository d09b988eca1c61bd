"""`hpcgan status [RUNS_OR_SWEEP_DIR]`: a table of runs; exits 1 when any failed."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hpcgan.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="one row per run: job state, step, images/s, checkpoint age, FID, requeues")
    p.add_argument("root", nargs="?", type=Path, default=Path("runs"), help="a run, sweep or runs directory")
    p.set_defaults(run=run_status)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _diversity(verdict: str | None) -> str:
    """The latest evaluation's diversity verdict, in words a glance catches."""
    return {"collapsed": "[bold red]MODE COLLAPSE[/]", "low": "[yellow]below real[/]", "ok": "[green]like real[/]"}.get(
        verdict or "", "-"
    )


def run_status(args: argparse.Namespace) -> int:
    from hpcgan.launch.status import collect

    if not args.root.is_dir():
        raise UserError(f"{args.root}: no such directory")
    rows = collect(args.root)
    if not rows:
        raise UserError(f"{args.root}: no runs found (a run dir holds config.json or job.json)")
    table = Table(title=f"runs in {args.root}")
    for column in ("run", "job", "state", "step", "images/s", "last checkpoint", "FID", "diversity", "requeues"):
        table.add_column(column, justify="left" if column in ("run", "state", "diversity") else "right")
    for r in rows:
        color = "red" if r.failed else "green" if r.state == "COMPLETED" else "yellow"
        table.add_row(
            r.name, r.job_id or "-", f"[{color}]{r.state}[/]", f"{r.step}/{r.total}",
            f"{r.images_per_s:.0f}" if r.images_per_s else "-", _age(r.checkpoint_age_s),
            f"{r.fid:.2f}" if r.fid is not None else "-", _diversity(r.diversity), str(r.requeues),
        )  # fmt: skip
    Console().print(table)  # the result, on stdout
    return 1 if any(r.failed for r in rows) else 0
