"""`hpcgan plan --gan NAME --kimg N --gpus G --gpu TYPE [key=value ...]`: a capacity plan on paper.

Images/s, sec/kimg and GPU-hours from the preset's counted FLOPs per image, the GPU's published peak
and an assumed MFU; then the gradient all-reduce, the data rate per node, the shard count, the
checkpoint and FID-50k. Every row says whether it is measured, published, assumed or projected. The
arithmetic is hpcgan/launch/capacity_plan.py; docs/scaling.md holds it against StyleGAN2-ADA's timings.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from hpcgan.data.formats import EXTENSIONS
from hpcgan.errors import UserError
from hpcgan.launch import capacity_plan as cp
from hpcgan.launch.capacity_plan_calibration import stylegan2_ada_calibration
from hpcgan.launch.gpu_specs import GPUS, gpu
from hpcgan.train.config_keys import apply_overrides, check_choices
from hpcgan.train.presets import PRESETS, preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="a capacity plan: GPU-hours, all-reduce, data rate, shards, checkpoints, FID")
    p.add_argument("--gan", required=True, help=f"the preset: {', '.join(PRESETS)}")
    p.add_argument("--kimg", type=float, default=5000, help="thousands of real images shown to D (5000)")
    p.add_argument("--gpus", type=int, default=8, help="GPUs in the job, the world size (8)")
    p.add_argument("--gpus-range", default="", metavar="N,N,...",
                   help="one compact row per GPU count instead of the full plan, e.g. 1,2,4,8,16,32,64")
    p.add_argument("--gpu", default="a100", help=f"the GPU type: {', '.join(GPUS)} (a100)")
    p.add_argument("--mfu", type=float, default=cp.DEFAULT_MFU,
                   help=f"model-FLOP utilisation, in (0, 1] ({cp.DEFAULT_MFU}: StyleGAN2-ADA's V100 timings imply it)")
    p.add_argument("--gpus-per-node", type=int, default=cp.DEFAULT_GPUS_PER_NODE,
                   help=f"beyond this many GPUs the ring leaves the node ({cp.DEFAULT_GPUS_PER_NODE})")
    p.add_argument("--interconnect-gbps", type=float, default=cp.DEFAULT_INTERCONNECT_GBPS,
                   help=f"between nodes, Gbit/s per node ({cp.DEFAULT_INTERCONNECT_GBPS:g}: InfiniBand HDR)")
    p.add_argument("--fs-gbs", type=float, default=cp.DEFAULT_FS_GB_S,
                   help=f"GB/s a node reads from / writes to the shared file system ({cp.DEFAULT_FS_GB_S:g})")
    p.add_argument("--format", default="png", choices=list(EXTENSIONS), help="the shards' image format (png)")
    p.add_argument("--image-bytes", type=float, default=0.0, help="bytes per sample in a shard (default: measured)")
    p.add_argument("--dataset-images", type=int, default=cp.FID_IMAGES,
                   help="real training images: the shard size and FID's real statistics (50000)")
    p.add_argument("--measure", action="store_true",
                   help="also time 3 real steps at batch 2 on this CPU (r3gan512: ~16 GB of RAM and many minutes)")
    p.add_argument("--calibrate", action="store_true", help="also the MFU implied by StyleGAN2-ADA's V100 timings")
    p.add_argument("--json", action="store_true", help="the numbers as JSON on stdout instead of a table")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.batch_size=16")
    p.set_defaults(run=run_plan)


def _settings(args: argparse.Namespace, config: Any, gpus: int) -> cp.PlanSettings:
    import torch

    from hpcgan.train.precision import resolve

    return cp.PlanSettings(
        kimg=args.kimg, gpus=gpus, gpu=gpu(args.gpu), precision=resolve(config.train.precision, torch.device("cuda")),
        batch=config.train.batch_size, workers=config.train.num_workers, mfu=args.mfu,
        gpus_per_node=args.gpus_per_node, interconnect_gbps=args.interconnect_gbps, fs_gb_s=args.fs_gbs,
        image_format=args.format, image_bytes=args.image_bytes, dataset_images=args.dataset_images,
    )  # fmt: skip


def _gpu_counts(text: str) -> list[int]:
    try:
        counts = [int(n) for n in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"--gpus-range {text}: expected whole numbers >= 1 separated by commas, e.g. 1,2,4,8")
    return counts


def run_plan(args: argparse.Namespace) -> int:
    from hpcgan.launch.capacity_plan_measure import measure_cpu, plan_for  # torch: only once a plan is asked for

    config = preset(args.gan)
    apply_overrides(config, args.overrides)
    check_choices(config)
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160
    counts = _gpu_counts(args.gpus_range) if args.gpus_range else [args.gpus]
    plans = [plan_for(config, _settings(args, config, n)) for n in counts]
    speed = measure_cpu(config) if args.measure else None
    if args.json:
        print(json.dumps([_numbers(plan, speed) for plan in plans], indent=1))
        return 0
    title = f"hpcgan plan --gan {args.gan} --kimg {args.kimg:g} --gpu {args.gpu} ({plans[0].unit}, MFU {args.mfu:g})"
    if args.gpus_range:
        console.print(range_table(plans, title))
    else:
        console.print(plan_table(plans[0], f"{title}, {args.gpus} GPUs"))
    if speed is not None:
        console.print(_measured_line(plans[0], speed, args.kimg))
    if args.calibrate:
        console.print(calibration_table())
    return 0


def plan_table(plan: cp.Plan, title: str) -> Table:
    p, s, f = plan, plan.settings, plan.flops
    table = Table(title=title, title_justify="left")
    table.add_column("item", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", no_wrap=True)
    table.add_column("how", ratio=1, overflow="fold")
    tf = 1e12
    rows = [
        ("FLOPs per image", f"{f.per_image / tf:.3g} TFLOP", "measured",
         f"counted with FlopCounterMode on the trainer's own steps: D update {f.d_update / tf:.3g}, "
         f"G update {f.g_update / tf:.3g} (x g_steps/d_steps = {f.g_steps}/{f.d_steps}); "
         f"G forward {f.g_forward / 1e9:.3g} GFLOP"),
        ("GPU peak", f"{p.peak_flops / tf:.4g} TFLOP/s {p.unit}", "published",
         f"{s.gpu.name} datasheet, dense; train.precision={s.precision}"
         + (f" ({s.gpu.name} has no bf16 units: run with train.precision=fp16)" if p.unit != s.precision
            and s.precision == "bf16" else "")),
        ("MFU", f"{s.mfu:g}", "assumed", "--mfu; StyleGAN2-ADA on V100 implies 0.14-0.18 (--calibrate)"),
        ("images/s", f"{p.images_per_s:.4g} ({p.images_per_s_per_gpu_planned:.4g} per GPU)", "projected",
         f"MFU x peak / FLOPs per image = {p.images_per_s_per_gpu:.4g} per GPU for compute alone; "
         f"limited by {p.bottleneck}"),
        ("sec/kimg", f"{p.sec_per_kimg:.3g}", "projected", "1000 / images/s"),
        ("GPU-hours", f"{p.gpu_hours:,.3g} ({cp.human_seconds(p.wall_hours * 3600)} wall-clock)", "projected",
         f"{s.kimg:g} kimg x sec/kimg x {s.gpus} GPUs"),
        ("all-reduce per step", f"{cp.human_bytes(p.gradient_bytes_per_step)} gradients, "
         f"{cp.human_seconds(p.allreduce_s_per_step)} = {_percent(p.allreduce_share)} of the step", "projected",
         f"ring: 2(n-1)/n x fp32 gradients of G and D at {p.link_gb_s:g} GB/s one way "
         f"({s.gpu.link if s.gpus <= s.gpus_per_node else f'--interconnect-gbps {s.interconnect_gbps:g}'}); "
         f"compute {cp.human_seconds(p.compute_s_per_step)} for {p.images_per_step} images per GPU, not overlapped"),
        ("data rate per node", f"{p.node_data_gb_s:.3g} GB/s of {s.fs_gb_s:g} GB/s", "projected",
         f"{p.gpus_on_a_node} GPUs x {p.images_per_s_per_gpu_planned:.4g} images/s x {cp.human_bytes(p.image_bytes)}"
         f" ({s.image_format}; --fs-gbs assumed); decoding: {s.workers} workers x "
         f"{cp.decode_rate(s.image_format, plan.resolution):g} images/s (measured on a 2-core CPU); "
         f"train.num_workers={p.workers_needed} keeps up with the GPU"),
        ("shards", f">= {p.shards_min}, {p.shards_recommended} recommended", "projected",
         f"the loader deals shards to {s.gpus} ranks; x {s.workers} workers: hpcgan shard --shard-size "
         f"{p.shard_size_images} for {s.dataset_images:,} images"),
        ("checkpoint", f"{cp.human_bytes(p.checkpoint_bytes)}, written in {cp.human_seconds(p.checkpoint_write_s)}",
         "projected", f"G, EMA G, D and the optimizer's moments in fp32, counted from the parameters; "
         f"{f.g_params / 1e6:.1f} M + {f.d_params / 1e6:.1f} M parameters at {s.fs_gb_s:g} GB/s"),
        ("FID-50k", f"{cp.human_seconds(p.fid_seconds_cached)} ({cp.human_seconds(p.fid_seconds)} the first time)",
         "projected", f"50k x (G forward + Inception {plan.inception_flops / 1e9:.3g} GFLOP, counted) over {s.gpus} "
         f"GPUs at the MFU in fp32/TF32; the first time also {s.dataset_images:,} real images"),
    ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    return table


def range_table(plans: list[cp.Plan], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("GPUs", "images/s", "sec/kimg", "GPU-hours", "wall-clock", "all-reduce share", "data/node GB/s",
                 "workers needed", "limited by"):  # fmt: skip
        table.add_column(name, justify="right")
    for p in plans:
        table.add_row(str(p.settings.gpus), f"{p.images_per_s:,.0f}", f"{p.sec_per_kimg:.3g}", f"{p.gpu_hours:,.3g}",
                      cp.human_seconds(p.wall_hours * 3600), _percent(p.allreduce_share), f"{p.node_data_gb_s:.3g}",
                      str(p.workers_needed), p.bottleneck)  # fmt: skip
    return table


def _percent(share: float) -> str:
    return f"{100 * share:.2g}%"


def _measured_line(plan: cp.Plan, speed: Any, kimg: float) -> str:
    achieved = speed.images_per_s * plan.flops.per_image
    return (f"measured on this CPU ({speed.threads} threads, batch {speed.batch}, no data loading): "
            f"{speed.images_per_s:.3g} images/s, {1000 / speed.images_per_s:.4g} sec/kimg, "
            f"{achieved / 1e9:.3g} GFLOP/s achieved; {kimg:g} kimg would take "
            f"{cp.human_seconds(kimg * 1000 / speed.images_per_s)}")  # fmt: skip


def calibration_table() -> Table:
    table = Table(title="StyleGAN2-ADA on Tesla V100 (published sec/kimg) and the MFU it implies",
                  title_justify="left")  # fmt: skip
    for name in ("px", "GPUs", "sec/kimg", "TFLOP/image (estimated)", "implied MFU (fp16 peak 125)"):
        table.add_column(name, justify="right")
    for row in stylegan2_ada_calibration(GPUS["v100"].fp16):
        table.add_row(str(row.resolution), str(row.gpus), f"{row.sec_per_kimg:g}", f"{row.flops_per_image / 1e12:.3g}",
                      f"{row.implied_mfu:.3f}")  # fmt: skip
    return table


def _numbers(plan: cp.Plan, speed: Any) -> dict[str, Any]:
    p, s = plan, plan.settings
    numbers = {
        "gpus": s.gpus, "gpu": s.gpu.name, "precision": s.precision, "unit": p.unit, "mfu": s.mfu, "kimg": s.kimg,
        "flops_per_image": p.flops.per_image, "peak_flops": p.peak_flops, "images_per_s": p.images_per_s,
        "sec_per_kimg": p.sec_per_kimg, "gpu_hours": p.gpu_hours, "wall_hours": p.wall_hours,
        "gradient_bytes_per_step": p.gradient_bytes_per_step, "allreduce_s_per_step": p.allreduce_s_per_step,
        "compute_s_per_step": p.compute_s_per_step, "allreduce_share": p.allreduce_share,
        "node_data_gb_s": p.node_data_gb_s, "workers_needed": p.workers_needed,
        "bottleneck": p.bottleneck, "shards_min": p.shards_min,
        "shards_recommended": p.shards_recommended, "checkpoint_bytes": p.checkpoint_bytes,
        "checkpoint_write_s": p.checkpoint_write_s, "fid50k_s": p.fid_seconds_cached,
        "fid50k_first_s": p.fid_seconds,
    }  # fmt: skip
    if speed is not None:
        numbers["cpu_images_per_s"] = speed.images_per_s
    return numbers
