"""The results of `python -m hpcgan.bench train`: one Row per loop, the final JSON line and the
table for people."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from hpcgan.bench.train_setup import Variant
from hpcgan.console import console
from hpcgan.train.config import RunConfig

TARGETS = {"overhead": 0.95, "speedup": 1.3}  # ours / plain: at most 5% slower; then 30% faster


@dataclass
class Row:
    variant: Variant
    warmup_s: float
    rates: list[float]  # images/s, one per round

    @property
    def rate(self) -> float:
        """The best round (the least disturbed by other processes)."""
        return max(self.rates)


def summary(rows: list[Row], flops: dict[str, float], config: RunConfig, args: argparse.Namespace) -> dict[str, Any]:
    """The final JSON line."""
    plain, ours = rows[0], rows[1]
    ours_rows = [r for r in rows if r.variant.kind == "ours"]
    best = max(ours_rows, key=lambda r: r.rate)
    speedup = ours.rate / plain.rate
    return {
        "bench": "train",
        "gan": args.gan,
        "resolution": config.model.resolution,
        "batch_size": config.train.batch_size,
        "threads": args.threads,
        "steps": args.steps,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "flops_per_image": round(flops["ours"]),
        "plain_flops_per_image": round(flops["plain"]),
        "images_per_s": {r.variant.name: round(r.rate, 2) for r in rows},
        "images_per_s_median": {r.variant.name: round(statistics.median(r.rates), 2) for r in rows},
        "images_per_s_rounds": {r.variant.name: [round(x, 2) for x in r.rates] for r in rows},
        "gflops_per_s": {r.variant.name: round(r.rate * flops[r.variant.kind] / 1e9, 1) for r in rows},
        "vs_plain": {r.variant.name: round(r.rate / plain.rate, 3) for r in rows},
        "vs_ours": {r.variant.name: round(r.rate / ours.rate, 3) for r in rows},
        "warmup_s": {r.variant.name: round(r.warmup_s, 1) for r in rows},
        "speedup": round(speedup, 3),
        "best": best.variant.name,
        "speedup_best": round(best.rate / plain.rate, 3),
        "speedup_paired_median": round(_paired(ours, plain), 3),
        "targets": TARGETS,
        "meets_overhead": speedup >= TARGETS["overhead"],
        "meets_speedup": speedup >= TARGETS["speedup"],
    }


def _paired(row: Row, baseline: Row) -> float:
    """Median over rounds of row / baseline within the round (both measured moments apart)."""
    return statistics.median(a / b for a, b in zip(row.rates, baseline.rates, strict=True))


def print_table(rows: list[Row], flops: dict[str, float], result: dict[str, Any]) -> None:
    """A table for people, on stderr: stdout carries only the JSON line."""
    table = Table(
        title=f"{result['gan']} at {result['resolution']} px, batch {result['batch_size']}, "
        f"{result['threads']} threads: images/s, best of {result['repeats']} rounds of {result['steps']} steps",
        caption=f"GFLOP per image: ours {flops['ours'] / 1e9:.3f}, plain {flops['plain'] / 1e9:.3f} "
        "(one D step + one G step, forward and backward);\n"
        f"vs plain = best rounds' ratio; ours / plain targets >= {TARGETS['overhead']}, then >= "
        f"{TARGETS['speedup']} (paired-round median: {result['speedup_paired_median']:.2f});\n"
        "GFLOP/s at the best round; warm-up = the first untimed steps, compilation included",
    )
    for header in ("loop", "images/s", "median", "vs plain", "vs ours", "GFLOP/s", "warm-up s"):
        table.add_column(header, justify="left" if header == "loop" else "right")
    for row in rows:
        name = row.variant.name
        ratio = result["vs_plain"][name]
        colour = "green" if ratio >= TARGETS["speedup"] else "yellow" if ratio >= TARGETS["overhead"] else "red"
        table.add_row(
            name,
            f"{row.rate:.1f}",
            f"{statistics.median(row.rates):.1f}",
            f"[{colour}]{ratio:.2f}[/]",
            f"{result['vs_ours'][name]:.2f}",
            f"{result['gflops_per_s'][name]:.1f}",
            f"{row.warmup_s:.1f}",
        )
    out = console if console.is_terminal else Console(stderr=True, width=140)
    out.print(table)
