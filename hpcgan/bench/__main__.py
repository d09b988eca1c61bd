"""`python -m hpcgan.bench NAME [options]`: one subcommand per benchmark."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from hpcgan.bench import fid, loader, memory, phantom, quality, threads, train
from hpcgan.errors import UserError

# name -> (add the benchmark's options to its parser, run it and return the exit code)
Register = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]
BENCHMARKS: dict[str, tuple[Register, Run]] = {
    "fid": (fid.register, fid.run),
    "loader": (loader.register, loader.run),
    "memory": (memory.register, memory.run),
    "phantom": (phantom.register, phantom.run),
    "quality": (quality.register, quality.run),
    "threads": (threads.register, threads.run),
    "train": (train.register, train.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hpcgan.bench", description="Run one hpcgan benchmark.")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name, (register, run) in BENCHMARKS.items():
        summary = (run.__doc__ or "").strip().splitlines()[0] if run.__doc__ else None
        p = sub.add_parser(name, help=summary, description=summary)
        register(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"hpcgan.bench {args.bench}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
