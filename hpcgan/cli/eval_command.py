"""`hpcgan eval RUN`: FID and KID of a run's checkpoints against its shard set, into RUN/eval.jsonl."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

from hpcgan.cli.progress import console, progress_bar
from hpcgan.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="FID and KID of a run's checkpoints (written to RUN/eval.jsonl)")
    p.add_argument("run_path", metavar="RUN", type=Path, help="run directory")
    p.add_argument("--checkpoints", default="latest", help="latest or all")
    p.add_argument("--n", "--num-samples", dest="n", type=int, default=10000,
                   help="generated images per checkpoint (under torchrun: --num-samples)")  # fmt: skip
    p.add_argument("--split", default="train", help="real images: the shard set's train or val split")
    p.add_argument("--extractor", default="random", help="feature extractor (random: offline, not comparable)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from hpcgan.data.index import ShardSet
    from hpcgan.eval.evaluate import evaluate, fake_stats, real_stats
    from hpcgan.eval.extractors import build_extractor
    from hpcgan.train.checkpoint import committed
    from hpcgan.train.synthesize import load_generator

    if args.n < 2:
        raise UserError(f"--n {args.n}: FID needs at least 2 generated images (thousands for a stable value)")
    if args.checkpoints not in ("latest", "all"):
        raise UserError(f"--checkpoints {args.checkpoints}: expected latest or all")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        # Launched as N ranks (torchrun, srun): every rank takes a share of the images.
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    main = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    paths = committed(args.run_path)
    if not paths:
        raise UserError(f"RUN {args.run_path}: no committed checkpoint; train the run first")
    paths = paths[:1] if args.checkpoints == "latest" else list(reversed(paths))
    extractor, identity = build_extractor(args.extractor)
    config = json.loads((args.run_path / "config.json").read_text())
    shard_set = ShardSet.open(config["data"])
    real = real_stats(shard_set, extractor, identity, args.split, args.batch_size)
    for path in paths:
        gen = load_generator(path, "cpu")
        labels = len(gen.classes) if gen.conditional else 1

        def sample(n: int, seed: int, gen=gen, labels=labels) -> torch.Tensor:
            z = np.random.default_rng(seed).standard_normal((n, gen.z_dim))
            return torch.from_numpy(gen.images(z, seed % labels)).unsqueeze(1)

        started = time.perf_counter()
        with progress_bar(f"eval step {gen.step}", total=None) if main else contextlib.nullcontext():
            fake = fake_stats(sample, args.n, extractor, args.batch_size)
        result = {"step": gen.step, "checkpoint": path.name, "extractor": identity, **evaluate(real, fake),
                  "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        if not main:
            continue
        with (args.run_path / "eval.jsonl").open("a") as handle:
            handle.write(json.dumps(result) + "\n")
        console.print(
            f"step {gen.step}: FID {result['fid']:.3f}  KID {result['kid']:.5f} ± {result['kid_std']:.5f} "
            f"({result['n_real']} real, {result['n_fake']} generated, {identity})",
            highlight=False,
        )
    return 0
