"""`python -m hpcgan.bench fid`: our evaluator's update loop against torchmetrics' (FID + KID) with
the same extractor, for N images from small to large: features/s and peak memory.

Each (loop, N) runs in a fresh process, so its peak resident memory (ru_maxrss, minus the process's
own after warm-up) is its own. Images are made batch by batch and dropped, as a generator would hand
them over. Ours keeps float64 sums plus at most KID_KEEP features; torchmetrics' KID keeps every
feature, so its memory grows with N. Both see the same images as "real" and, reversed, as "fake";
torchmetrics runs the extractor once per metric (FID and KID are separate metrics), ours once per
image set. The last stdout line is one JSON object; the table goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
import warnings

from rich.console import Console
from rich.table import Table

from hpcgan.errors import UserError

LOOPS = ("ours", "torchmetrics")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="2000,10000,20000", help="comma-separated image counts N")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--resolution", type=int, default=64)


def _measure(loop: str, n: int, batch_size: int, resolution: int, queue) -> None:
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    from hpcgan.eval.evaluate import KID_KEEP, evaluate
    from hpcgan.eval.extractors import build_extractor
    from hpcgan.eval.feature_stats import FeatureStats

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*save all extracted features.*")  # that is what we measure
    extractor, _ = build_extractor("random")
    gen = torch.Generator().manual_seed(0)

    def batches():
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            yield torch.randint(0, 256, (size, 1, resolution, resolution), generator=gen, dtype=torch.uint8)

    extractor(torch.zeros(2, 1, resolution, resolution, dtype=torch.uint8))  # warm-up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with torch.no_grad():
        if loop == "ours":
            real, fake = FeatureStats(extractor.num_features, KID_KEEP), FeatureStats(extractor.num_features, KID_KEEP)
            for images in batches():  # one extraction per image set, shared by FID and KID
                real.update(extractor(images))
                fake.update(extractor(images.flip(0)))
            evaluate(real, fake, kid_subsets=10, with_precision_recall=False)  # what torchmetrics does
        else:
            fid = FrechetInceptionDistance(feature=extractor)
            kid = KernelInceptionDistance(feature=extractor, subsets=10, subset_size=min(1000, n // 2))
            for images in batches():
                for metric in (fid, kid):
                    metric.update(images, real=True)
                    metric.update(images.flip(0), real=False)
            fid.compute(), kid.compute()
    seconds = time.perf_counter() - started
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    queue.put({"loop": loop, "n": n, "images_per_s": n / seconds, "peak_mb": peak_mb})


def run(args: argparse.Namespace) -> int:
    """Features/s and peak memory of our FID/KID evaluator against torchmetrics', N from 2k to 20k."""
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise UserError(f"--sizes {args.sizes}: expected comma-separated integers, e.g. 2000,10000") from None
    if not sizes or min(sizes) < 4 or args.batch_size < 1:
        raise UserError(f"--sizes {args.sizes} / --batch-size {args.batch_size}: expected N >= 4 and a batch >= 1")
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for n in sizes:
        for loop in LOOPS:
            queue = ctx.Queue()
            proc = ctx.Process(target=_measure, args=(loop, n, args.batch_size, args.resolution, queue))
            proc.start()
            rows.append(queue.get())
            proc.join()
    by = {(r["loop"], r["n"]): r for r in rows}
    table = Table(title=f"FID + KID update loops, random extractor, {args.resolution} px, 1 thread")
    for column in ("N", "ours images/s", "torchmetrics images/s", "speedup", "ours peak MB", "torchmetrics peak MB"):
        table.add_column(column, justify="right")
    for n in sizes:
        ours, ref = by[("ours", n)], by[("torchmetrics", n)]
        table.add_row(str(n), f"{ours['images_per_s']:.0f}", f"{ref['images_per_s']:.0f}",
                      f"{ours['images_per_s'] / ref['images_per_s']:.2f}", f"{ours['peak_mb']:.0f}",
                      f"{ref['peak_mb']:.0f}")  # fmt: skip
    Console(stderr=True).print(table)
    largest, smallest = max(sizes), min(sizes)
    ours_l, ref_l = by[("ours", largest)], by[("torchmetrics", largest)]
    summary = {
        "bench": "fid",
        "sizes": sizes,
        "rows": rows,
        "speedup": round(ours_l["images_per_s"] / ref_l["images_per_s"], 3),
        "ours_memory_growth_mb": round(ours_l["peak_mb"] - by[("ours", smallest)]["peak_mb"], 1),
        "torchmetrics_memory_growth_mb": round(ref_l["peak_mb"] - by[("torchmetrics", smallest)]["peak_mb"], 1),
        "targets": {"speedup": 1.0, "memory": "flat in N"},
    }
    print(json.dumps(summary))
    return 0
