"""`python -m hpcgan.bench threads`: `hpcgan demo` (its training, in images/s) under hpcgan's thread
budget (hpcgan/train/threads.py: the usable cores minus the loader workers, idle OpenMP threads
asleep) against torch's own default (a thread per core, spinning while it waits) and against every
core with sleeping threads, on an otherwise idle machine and beside one busy process, in one run."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.table import Table

from hpcgan.console import console

CORES = len(os.sched_getaffinity(0))
# torch's default as it was before the budget: one thread per core, OpenMP's active (spinning) wait.
TORCH_DEFAULT = {"OMP_NUM_THREADS": str(CORES), "OMP_WAIT_POLICY": "ACTIVE"}
# The alternative measured beside: every core, threads asleep while they wait (no workers subtracted).
ALL_CORES_ASLEEP = {"OMP_NUM_THREADS": str(CORES), "OMP_WAIT_POLICY": "PASSIVE"}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=600, help="phantoms of the demo")
    parser.add_argument("--steps", type=int, default=120, help="training steps of the demo")


def _busy() -> None:
    while True:
        pass


def _demo(args: argparse.Namespace, env: dict[str, str]) -> tuple[float, float]:
    """(seconds, training images/s of the last logged step) of one demo in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hpcgan", "demo", "--out", out, "--n", str(args.n), "--steps",
                        str(args.steps)], env=env, check=True, capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - start
        lines = (Path(out) / "runs" / "r3gan64" / "metrics.jsonl").read_text().splitlines()
        rate = [json.loads(line)["images_per_s"] for line in lines if "images_per_s" in line][-1]
    return seconds, rate


def run(args: argparse.Namespace) -> int:
    """hpcgan demo under the thread budget against torch's default, idle and beside a busy process."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    table = Table(title=f"hpcgan demo --n {args.n} --steps {args.steps} ({len(os.sched_getaffinity(0))} cores)")
    for column in ("machine", "threads", "seconds", "train images/s", "vs torch default"):
        table.add_column(column, justify="right" if column not in ("machine", "threads") else "left")
    for machine in ("idle", "one busy process"):
        busy = multiprocessing.get_context("fork").Process(target=_busy, daemon=True) if machine != "idle" else None
        if busy:
            busy.start()
        try:
            rows = {"torch default": _demo(args, {**base, **TORCH_DEFAULT}),
                    "all cores, asleep": _demo(args, {**base, **ALL_CORES_ASLEEP}),
                    "hpcgan budget": _demo(args, base)}  # fmt: skip
        finally:
            if busy:
                busy.terminate()
        default = rows["torch default"][0]
        for name, (seconds, rate) in rows.items():
            table.add_row(machine, name, f"{seconds:.0f}", f"{rate:.1f}", f"{default / seconds:.2f}x faster")
    console.print(table)
    return 0
