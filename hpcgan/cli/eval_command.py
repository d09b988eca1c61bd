"""`hpcgan eval RUN`: the metrics of the registry (hpcgan/eval/registry.py; by default FID/KID,
precision/recall, near-duplicates, IS with inception, MS-SSIM diversity) of a run's checkpoints
against its shard set, into RUN/eval.jsonl. Under torchrun or srun every rank takes a share of the
generated images. Parsing and printing only: the evaluation is hpcgan/trained/evaluate.py."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hpcgan.console import console, progress_bar
from hpcgan.eval.collapse import describe_verdict
from hpcgan.eval.registry import METRICS, describe_metrics


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="FID/KID/precision/recall/IS/MS-SSIM of a run's checkpoints (RUN/eval.jsonl)",
        epilog="metrics (--metrics NAME,...):\n" + describe_metrics(),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # one metric a line
    )
    p.add_argument("run_path", metavar="RUN", type=Path, help="run directory")
    p.add_argument("--checkpoints", default="latest",
                   help="latest, all, best (kept by eval.every in training) or a file in RUN/checkpoints")  # fmt: skip
    p.add_argument("--n", "--num-samples", dest="n", type=int, default=10000,
                   help="generated images per checkpoint (under torchrun: --num-samples)")  # fmt: skip
    p.add_argument("--split", default="train", help="real images: the shard set's train or val split")
    p.add_argument("--extractor", default="random",
                   help="inception (the standard FID network; local weights), xrv (torchxrayvision), or random "
                   "(offline, seeded: FIDs not comparable with published ones)")  # fmt: skip
    p.add_argument("--inception-weights", default=None, metavar="FILE",
                   help="the pytorch-fid weights file (else $HPCGAN_INCEPTION_WEIGHTS, the hub cache)")  # fmt: skip
    p.add_argument("--xrv-weights", default=None, metavar="FILE", help="torchxrayvision DenseNet weights file")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--diversity-pairs", type=int, default=128, help="image pairs for MS-SSIM diversity (0: skip)")
    p.add_argument("--metrics", default=None, metavar="NAME,...",
                   help=f"from {', '.join(METRICS)} (default: every one that applies; listed below)")  # fmt: skip
    p.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from hpcgan.trained.evaluate import EvalOptions, check_options, evaluate_run

    weights = args.xrv_weights if args.extractor == "xrv" else args.inception_weights
    options = EvalOptions(args.checkpoints, args.n, args.split, args.extractor, weights, args.batch_size,
                          args.diversity_pairs, args.metrics)  # fmt: skip
    check_options(options)  # before any process group: a typo is one line, not one per rank
    if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        # Plain srun sets only SLURM_* variables: RANK, WORLD_SIZE, MASTER_ADDR/PORT from them.
        from hpcgan.launch.rendezvous import export_distributed_env

        export_distributed_env()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        # Launched as N ranks (torchrun, srun): every rank takes a share of the images. gloo even on
        # GPUs: the statistics live on the CPU, and NCCL would need a device per rank for them.
        torch.distributed.init_process_group("gloo")
    evaluate_run(args.run_path, options, on_result=print_result, progress=lambda d: progress_bar(d, total=None))
    return 0


def print_result(result: dict[str, Any]) -> None:
    from rich.markup import escape

    color = {"collapsed": "bold red", "low": "yellow"}.get(result.get("diversity", ""), "")
    text = describe(result)
    if color:
        head, _, verdict = text.rpartition("\n")
        console.print(head, highlight=False)
        console.print(f"[{color}]{escape(verdict)}[/]", highlight=False)
    else:
        console.print(text, highlight=False)


def describe(r: dict[str, Any]) -> str:
    """An eval.jsonl result for people: the measures it has, then the diversity verdict on a line of its own."""
    parts = [f"step {r['step']}:"]
    if "fid" in r:
        parts.append(f"FID {r['fid']:.3f}  KID {r['kid']:.5f} ± {r['kid_std']:.5f}")
    if "precision" in r:
        real = f" (real {r['precision_real']:.3f} / {r['recall_real']:.3f})" if "recall_real" in r else ""
        parts.append(f"precision {r['precision']:.3f} recall {r['recall']:.3f}{real}")
    if "near_duplicates" in r:
        parts.append(f"near-duplicates {r['near_duplicates']:.3f} (real {r['near_duplicates_real']:.3f})")
    if "inception_score" in r:
        parts.append(f"IS {r['inception_score']:.3f} ± {r['inception_score_std']:.3f}")
    if "ms_ssim" in r:
        parts.append(f"MS-SSIM {r['ms_ssim']:.3f} (real {r['ms_ssim_real']:.3f})")
    counts = f"{r['n_real']} real, " if "n_real" in r else ""
    line = "  ".join(parts) + f" ({counts}{r['n_fake']} generated, {r['extractor']})"
    if r.get("fid_per_finding"):
        line += "\nFID per finding: " + ", ".join(f"{name} {v['fid']:.3f} ({v['n_real']} real, {v['n_fake']} generated)"
                                                 for name, v in r["fid_per_finding"].items())  # fmt: skip
    if "diversity" in r:
        line += "\n" + describe_verdict(r["diversity"], r["diversity_notes"])
    return line
