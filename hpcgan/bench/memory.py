"""`python -m hpcgan.bench memory --gan r3gan512`: what one training step of a preset keeps in memory,
and the batch that fits a GPU.

Measured on the CPU with the real step functions (hpcgan/train/gan_steps.py), in the precision asked
for: the bytes of every tensor autograd saves for backward, each storage counted once
(torch.autograd.graph.saved_tensors_hooks), in a D step (R1/R2's double backward included) and in
a G step, per image at --batch-size; the parameters with their gradients, Adam's two moments and the
EMA copy, in fp32 as training keeps them. The projection for a batch is states + batch x the larger
step's activations; the allocator's workspace, cuDNN's scratch and fragmentation come on top, so a
GPU should keep a fifth of its memory free (--headroom).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from hpcgan.errors import UserError
from hpcgan.train.config import apply_overrides, check, networks_for
from hpcgan.train.fake_labels import FakeLabels
from hpcgan.train.gan_steps import discriminator_loss, generator_loss
from hpcgan.train.presets import preset

GB = 1024**3


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gan", default="r3gan512", help="preset (default r3gan512)")
    parser.add_argument("--batch-size", type=int, default=1, help="images measured (default 1)")
    parser.add_argument("--precision", default="bf16", help="bf16 (autocast, as on GPUs) or fp32")
    parser.add_argument("--project-batch", type=int, default=8, help="batch to project to (default 8)")
    parser.add_argument("--gpu-gb", type=float, default=80.0, help="GPU memory in GB (default 80)")
    parser.add_argument("--headroom", type=float, default=0.2, help="fraction kept free (default 0.2)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. model.blocks=1")


def _saved_bytes(step) -> int:
    """Bytes autograd saves while `step()` builds its graph (each storage once)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(storages.values())


def run(args: argparse.Namespace) -> int:
    """Parameters, optimizer state and saved activations of one training step; the batch that fits a GPU."""
    if args.precision not in ("bf16", "fp32"):
        raise UserError(f"--precision {args.precision}: expected bf16 or fp32")
    if args.batch_size < 1 or args.project_batch < 1 or not 0 <= args.headroom < 1:
        raise UserError("expected --batch-size >= 1, --project-batch >= 1 and --headroom in [0, 1)")
    config = apply_overrides(preset(args.gan), args.overrides)
    check(config)
    classes = 2 if config.model.conditional != "none" else 0
    torch.manual_seed(0)
    g, d = networks_for(config, classes)
    n, res, gen = args.batch_size, config.model.resolution, torch.Generator().manual_seed(0)
    real = torch.rand(n, 1, res, res) * 2 - 1
    labels = torch.zeros(n, dtype=torch.long)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def d_step() -> None:
        with autocast:
            discriminator_loss(config, g, d, real, labels, FakeLabels(classes), gen)

    def g_step() -> None:
        d.requires_grad_(False)
        with autocast:
            generator_loss(config, g, d, n, FakeLabels(classes), gen, "cpu", real, labels)
        d.requires_grad_(True)

    d_bytes, g_bytes = _saved_bytes(d_step) / n, _saved_bytes(g_step) / n
    params = {name: sum(p.numel() for p in net.parameters()) for name, net in (("g", g), ("d", d))}
    # fp32 weights + gradients + Adam's two moments, both networks; the EMA generator's weights.
    states = 16 * (params["g"] + params["d"]) + 4 * params["g"]
    per_image = max(d_bytes, g_bytes)
    projected = states + args.project_batch * per_image
    usable = args.gpu_gb * 1e9 * (1 - args.headroom)
    result: dict[str, Any] = {
        "bench": "memory", "gan": args.gan, "resolution": res, "precision": args.precision,
        "parameters": params, "state_gb": round(states / GB, 3), "d_step_gb_per_image": round(d_bytes / GB, 3),
        "g_step_gb_per_image": round(g_bytes / GB, 3), "project_batch": args.project_batch,
        "projected_gb": round(projected / GB, 2), "gpu_gb": args.gpu_gb,
        "max_batch": int(max(usable - states, 0) // per_image), "fits": projected <= usable,
    }  # fmt: skip
    table = Table(title=f"{args.gan} at {res} px, {args.precision}: memory of one training step")
    table.add_column("what")
    table.add_column("GB", justify="right")
    for label, value in (("G + D: weights, grads, Adam moments; EMA G", states),
                         ("D step (R1/R2 included), per image", d_bytes), ("G step, per image", g_bytes),
                         (f"batch {args.project_batch}: states + batch x the larger step", projected)):  # fmt: skip
        table.add_row(label, f"{value / GB:.2f}")
    table.caption = (f"parameters G {params['g'] / 1e6:.1f} M, D {params['d'] / 1e6:.1f} M; "
                     f"largest batch in {args.gpu_gb:g} GB with {args.headroom:.0%} free: {result['max_batch']}")
    Console(stderr=True).print(table)
    print(json.dumps(result))
    return 0
