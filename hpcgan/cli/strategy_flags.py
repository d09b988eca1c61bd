"""--strategy, --zero, --offload-optimizer and --deepspeed-config, shared by `train` and `submit`:
shorthands for the train.* config keys of the same names (hpcgan/train/deepspeed_config.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_strategy_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distribution strategy (shorthands for train.strategy, train.zero, ...)")
    g.add_argument("--strategy", help="ddp (default, accelerate) or deepspeed (pip install 'hpcgan[deepspeed]')")
    g.add_argument("--zero", type=int, help="with --strategy deepspeed: ZeRO stage 1 or 2 (default 2)")
    g.add_argument("--offload-optimizer", help="with --strategy deepspeed: none or cpu (optimizer states in host RAM)")
    g.add_argument("--deepspeed-config", type=Path, metavar="FILE",
                   help="a DeepSpeed JSON merged into the generated one; values both set must agree")  # fmt: skip


def strategy_overrides(args: argparse.Namespace) -> list[str]:
    """The flags given, as key=value overrides (applied after the positional ones)."""
    flags = {"strategy": args.strategy, "zero": args.zero, "offload_optimizer": args.offload_optimizer}
    overrides = [f"train.{key}={value}" for key, value in flags.items() if value is not None]
    if args.deepspeed_config is not None:  # absolute: a SLURM job reads it from another directory
        overrides.append(f"train.deepspeed_config={args.deepspeed_config.resolve()}")
    return overrides
