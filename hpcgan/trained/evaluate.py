"""Evaluate a run's checkpoints (`hpcgan eval`, and its SLURM job): the metrics of the registry
(hpcgan/eval/registry.py; by default every one that applies: FID/KID, precision/recall,
near-duplicates, the Inception Score with the inception extractor, MS-SSIM diversity), one line per
checkpoint in RUN/eval.jsonl with the diversity verdict.

Every rank of the job calls `evaluate_run`; each draws its own numbers of the one sequence of
generated images (hpcgan/models/latents.py, hpcgan/eval/evaluate.py) and the statistics are
all-reduced, and rank 0 writes. Rank 0 also picks the checkpoints for all. Lines are appended under a
lock, so the array elements of `python -m hpcgan.submit --eval` can share the file. The images are
those the training-time evaluation draws (same seed, same layout), so both give one FID per checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.distributed as dist

from hpcgan.data.index import ShardSet
from hpcgan.errors import UserError
from hpcgan.eval.collapse import with_verdict
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.metric_inputs import MetricInputs, RealSide
from hpcgan.eval.registry import compute, parse_metrics
from hpcgan.models.latents import EVAL_SEED
from hpcgan.runs.checkpoints import committed
from hpcgan.runs.layout import RunPaths
from hpcgan.runs.records import read_run_config
from hpcgan.train.rank_zero import rank0_decides
from hpcgan.trained.generator import LoadedGenerator, load_generator

SELECTIONS = ("latest", "all", "best")


@dataclass(frozen=True)
class EvalOptions:
    checkpoints: str = "latest"  # latest | all | best | one file in RUN/checkpoints
    n: int = 10000  # generated images per checkpoint
    split: str = "train"
    extractor: str = "random"
    weights: str | None = None  # the extractor's weights file (inception, xrv)
    batch_size: int = 64
    diversity_pairs: int = 128  # 0: skip MS-SSIM
    metrics: str | None = None  # NAME,NAME,... of hpcgan/eval/registry.py; None: every one that applies


def check_options(o: EvalOptions) -> None:
    if o.n < 4:
        raise UserError(f"--n {o.n}: expected at least 4 generated images (precision/recall's k-NN needs more than "
                        "3; FID needs thousands for a stable value)")  # fmt: skip
    if o.batch_size < 1:
        raise UserError(f"--batch-size {o.batch_size}: expected at least 1")
    if o.diversity_pairs < 0:
        raise UserError(f"--diversity-pairs {o.diversity_pairs}: expected 0 or more")
    parse_metrics(o.metrics)


def select_checkpoints(run_dir: Path, which: str) -> list[Path]:
    """The checkpoint files to evaluate, oldest first."""
    run_dir = Path(run_dir)
    folder = RunPaths(run_dir).checkpoints
    paths = committed(run_dir)
    if which == "best":
        best = RunPaths(run_dir).best_checkpoint
        if not best.is_file():
            raise UserError(f"RUN {run_dir}: no checkpoints/best.pt; it is kept by training with eval.every=N")
        return [best]
    if which not in SELECTIONS:
        named = folder / which
        # A name in this run's checkpoints/, nothing else: another run's checkpoint would be logged here.
        inside = named.resolve().parent == folder.resolve()
        if inside and named.suffix == ".pt" and named.is_file():
            return [named]
        raise UserError(f"--checkpoints {which}: expected latest, all, best or a .pt file in {folder}")
    if not paths:
        raise UserError(f"RUN {run_dir}: no committed checkpoint; train the run first")
    return paths[:1] if which == "latest" else list(reversed(paths))


def _load_on_every_rank(path: Path) -> LoadedGenerator:
    """The generator of `path`, checked to be the same file on every rank (one rank failing fails all)."""
    try:
        gen, digest = load_generator(path, "cpu"), ""
    except UserError as exc:
        gen, digest = None, f"error: {exc}"
    if dist.is_initialized() and dist.get_world_size() > 1:
        digests: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(digests, digest or gen.checkpoint_sha256)
        failed = next((d for d in digests if d.startswith("error: ")), None)
        if failed:
            raise UserError(failed[len("error: "):])
        if len(set(digests)) > 1:
            raise UserError(f"{path}: the ranks read different contents (rewritten while loading?); run again")
    if gen is None:
        raise UserError(digest[len("error: "):])
    return gen


def _append_line(path: Path, line: str) -> None:
    """One locked, synced append: the elements of an eval array may finish together on several nodes
    (O_APPEND alone is not atomic on NFS)."""
    with path.open("a") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def evaluate_run(
    run_dir: Path, o: EvalOptions, on_result: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Evaluate the selected checkpoints of `run_dir` on every rank; rank 0 appends each result to
    eval.jsonl and passes it to `on_result`. `progress(description)` gives a context manager."""
    check_options(o)
    run_dir = Path(run_dir)
    names = parse_metrics(o.metrics)
    # Rank 0 picks: ranks looking on their own could see different checkpoints while training prunes.
    paths = rank0_decides(lambda: select_checkpoints(run_dir, o.checkpoints))
    main = not dist.is_initialized() or dist.get_rank() == 0
    extractor, identity = build_extractor(o.extractor, weights=o.weights)
    shard_set = ShardSet.open(read_run_config(run_dir)["data"])
    real = RealSide(shard_set, o.split, extractor, identity, o.batch_size)  # shared by every checkpoint
    results = []
    for path in paths:
        gen = _load_on_every_rank(path)
        inputs = MetricInputs(real, gen.sampler(EVAL_SEED), o.n, o.diversity_pairs, main)
        started = time.perf_counter()
        context = progress(f"eval step {gen.step}") if progress and main else contextlib.nullcontext()
        with context:
            measured = compute(names, inputs)
        if not main:
            continue
        result = {"step": gen.step, "checkpoint": path.name, **measured,
                  "world_size": dist.get_world_size() if dist.is_initialized() else 1}  # fmt: skip
        result = with_verdict(result)
        result["seconds"] = round(time.perf_counter() - started, 1)
        _append_line(RunPaths(run_dir).eval_log, json.dumps(result))
        results.append(result)
        if on_result:
            on_result(result)
    return results
