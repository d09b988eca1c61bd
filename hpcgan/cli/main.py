"""The `hpcgan` command: one subcommand per job, user errors as one line, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from rich.markup import escape

from hpcgan import __version__
from hpcgan.cli import (
    config_command,
    data_commands,
    demo,
    doctor_command,
    eval_command,
    memorization_command,
    plan_command,
    report_command,
    sample_command,
    status_command,
    submit_command,
    train_command,
    tstr_command,
)
from hpcgan.console import console
from hpcgan.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpcgan", description="Train GANs on chest X-rays across SLURM clusters.")
    parser.add_argument("--version", action="version", version=f"hpcgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_commands.register(sub)
    train_command.register(sub)
    config_command.register(sub)
    sample_command.register(sub)
    eval_command.register(sub)
    tstr_command.register(sub)
    memorization_command.register(sub)
    submit_command.register(sub)
    status_command.register(sub)
    doctor_command.register(sub)
    report_command.register(sub)
    demo.register(sub)
    plan_command.register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ARG001
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    # Before torch loads (its OpenMP reads this once): idle threads sleep rather than spin, which on
    # a shared or oversubscribed node costs a tenfold slowdown (hpcgan/train/threads.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    warnings.formatwarning = _one_line_warning  # no source lines under our own warnings
    parser = build_parser()
    # key=value overrides may stand anywhere among the options (argparse only takes positionals
    # in one run), so collect the leftovers for the commands that accept them.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any("=" not in item or item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    try:
        return args.run(args)
    except UserError as exc:
        # escape: messages hold literal brackets (pip install 'hpcgan[xrv]') that rich would eat as markup
        console.print(f"[red]hpcgan {args.command}: error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print(f"hpcgan {args.command}: interrupted; re-run the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
