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
from hpcgan.launch.capacity_plan_calibration import STYLEGAN2_ADA_SEC_PER_KIMG  # V100 s/kimg, as the plan's
from hpcgan.train.config import RunConfig

TARGETS = {"overhead": 0.95, "speedup": 1.3}  # ours / plain: at most 5% slower; then 30% faster

KIMG_NOTE_CPU = "sec/kimg at 256 and 512 px, beside stylegan2-ada's table, needs CUDA: not measured on CPU"


def sec_per_kimg(images_per_s: float) -> float:
    """Seconds per thousand training images: stylegan2-ada's unit."""
    return 1000.0 / images_per_s


def stylegan2_ada_batch(resolution: int, gpus: int = 1) -> int:
    """The global batch stylegan2-ada's --cfg=auto picks: 4096 / resolution images per GPU (at most
    32), at most 64 in all, at least one per GPU (16 at 256 px and 8 at 512 px on one GPU)."""
    return max(min(gpus * min(4096 // resolution, 32), 64), gpus)


@dataclass
class KimgRow:
    """One preset at 256 or 512 px on one GPU, at stylegan2-ada's one-GPU batch."""

    gan: str
    resolution: int
    batch_size: int
    images_per_s: float | None  # None: it did not run (`error` says why, e.g. out of GPU memory)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        reference = STYLEGAN2_ADA_SEC_PER_KIMG[self.resolution]
        out: dict[str, Any] = {"resolution": self.resolution, "batch_size": self.batch_size}
        if self.images_per_s is None:
            return out | {"error": self.error}
        ours = sec_per_kimg(self.images_per_s)
        return out | {
            "images_per_s": round(self.images_per_s, 2),
            "sec_per_kimg": round(ours, 2),
            "stylegan2_ada_sec_per_kimg": reference,
            "vs_stylegan2_ada": {f"{gpus}gpu": round(ours / ref, 3) for gpus, ref in reference.items()},
        }


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
    _stderr().print(table)


def print_kimg_table(rows: list[KimgRow], device: str) -> None:
    """sec/kimg of our Trainer beside stylegan2-ada's V100 figures, as ratios (below 1: faster)."""
    table = Table(
        title=f"sec/kimg on one {device}: ours (default config, bf16) beside stylegan2-ada-pytorch (V100s)",
        caption="sec/kimg = seconds per 1000 real images shown to D, at stylegan2-ada's --cfg=auto batch for one "
        "GPU (16 at 256 px, 8 at 512 px);\nratio = ours / theirs; their 8-GPU runs use a global batch of 64, "
        "so that ratio sets one GPU of ours against eight of theirs",
    )
    for header in ("preset", "px", "batch", "images/s", "s/kimg", "1 V100", "ratio", "8 V100", "ratio"):
        table.add_column(header, justify="left" if header == "preset" else "right")
    for row in rows:
        reference = STYLEGAN2_ADA_SEC_PER_KIMG[row.resolution]
        if row.images_per_s is None:
            table.add_row(
                row.gan,
                str(row.resolution),
                str(row.batch_size),
                f"[red]{row.error}[/]",
                "",
                f"{reference[1]}",
                "",
                f"{reference[8]}",
                "",
            )
            continue
        ours = sec_per_kimg(row.images_per_s)
        table.add_row(
            row.gan,
            str(row.resolution),
            str(row.batch_size),
            f"{row.images_per_s:.1f}",
            f"{ours:.1f}",
            f"{reference[1]}",
            f"{ours / reference[1]:.2f}",
            f"{reference[8]}",
            f"{ours / reference[8]:.2f}",
        )
    _stderr().print(table)


def print_note(text: str) -> None:
    _stderr().print(text, highlight=False)


def _stderr() -> Console:
    """People's output: the terminal, else stderr (stdout carries only the JSON line)."""
    return console if console.is_terminal else Console(stderr=True, width=140)
