"""Evaluate a run's checkpoints (`hpcgan eval`, and its SLURM job): FID, KID, precision/recall,
the Inception Score with the inception extractor, and MS-SSIM diversity, one line per checkpoint
in RUN/eval.jsonl.

Every rank of the job calls `evaluate_run`; the generated images are split across them and the
statistics all-reduced (hpcgan/eval/evaluate.py), and rank 0 writes. Rank 0 also picks the
checkpoints for all. Lines are appended under a lock, so the array elements of
`python -m hpcgan.submit --eval` can share the file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from hpcgan.data.index import ShardSet
from hpcgan.data.read_split import read_split
from hpcgan.errors import UserError
from hpcgan.eval.collapse import describe_verdict, with_verdict
from hpcgan.eval.diversity import mean_ms_ssim
from hpcgan.eval.evaluate import evaluate, fake_stats, real_stats
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.inception_score import ClassProbStats
from hpcgan.train.checkpoint import checkpoint_dir, committed
from hpcgan.train.synthesize import LoadedGenerator, load_generator

EVAL_LOG = "eval.jsonl"
SELECTIONS = ("latest", "all", "best")
DIVERSITY_SEED = 1_000_000  # latent seeds of the diversity pairs: apart from the FID batches' 0, 1, ...


@dataclass(frozen=True)
class EvalOptions:
    checkpoints: str = "latest"  # latest | all | best | one file in RUN/checkpoints
    n: int = 10000  # generated images per checkpoint
    split: str = "train"
    extractor: str = "random"
    weights: str | None = None  # the extractor's weights file (inception, xrv)
    batch_size: int = 64
    diversity_pairs: int = 128  # 0: skip MS-SSIM


def check_options(o: EvalOptions) -> None:
    if o.n < 4:
        raise UserError(f"--n {o.n}: expected at least 4 generated images (precision/recall's k-NN needs more than "
                        "3; FID needs thousands for a stable value)")  # fmt: skip
    if o.batch_size < 1:
        raise UserError(f"--batch-size {o.batch_size}: expected at least 1")
    if o.diversity_pairs < 0:
        raise UserError(f"--diversity-pairs {o.diversity_pairs}: expected 0 or more")


def select_checkpoints(run_dir: Path, which: str) -> list[Path]:
    """The checkpoint files to evaluate, oldest first."""
    run_dir = Path(run_dir)
    paths = committed(run_dir)
    if which == "best":
        best = checkpoint_dir(run_dir) / "best.pt"
        if not best.is_file():
            raise UserError(f"RUN {run_dir}: no checkpoints/best.pt; it is kept by training with eval.every=N")
        return [best]
    if which not in SELECTIONS:
        named = checkpoint_dir(run_dir) / which
        # A name in this run's checkpoints/, nothing else: another run's checkpoint would be logged here.
        inside = named.resolve().parent == checkpoint_dir(run_dir).resolve()
        if inside and named.suffix == ".pt" and named.is_file():
            return [named]
        raise UserError(f"--checkpoints {which}: expected latest, all, best or a .pt file in {checkpoint_dir(run_dir)}")
    if not paths:
        raise UserError(f"RUN {run_dir}: no committed checkpoint; train the run first")
    return paths[:1] if which == "latest" else list(reversed(paths))


def _sampler(gen: LoadedGenerator) -> Callable[[int, int], torch.Tensor]:
    labels = len(gen.classes) if gen.conditional else 1

    def sample(n: int, seed: int) -> torch.Tensor:
        z = np.random.default_rng(seed).standard_normal((n, gen.z_dim))
        return torch.from_numpy(gen.images(z, seed % labels)).unsqueeze(1)

    return sample


def _diversity(gen: LoadedGenerator, real: tuple[torch.Tensor, torch.Tensor], pairs: int) -> dict[str, float]:
    """Mean MS-SSIM of generated pairs and of real pairs (the first images of the split: the shard
    writer shuffled them). For a conditional run both sides pair images of one class with each other,
    class by class, so that class differences do not pass for diversity."""
    sample = _sampler(gen)
    classes = len(gen.classes) if gen.conditional else 1
    fake_scores, real_scores = [], []
    for c in range(classes):
        share = max(1, pairs // classes)
        fake = sample(2 * share, DIVERSITY_SEED * classes + c)  # a seed that is c modulo classes: class c
        mine = real[0][real[1] == c] if classes > 1 else real[0]
        half = min(share, len(mine) // 2)
        fake_scores.append((mean_ms_ssim(fake[:share], fake[share:]), share))
        if half:
            real_scores.append((mean_ms_ssim(mine[:half], mine[half : 2 * half]), half))

    def weighted(scores: list[tuple[float, int]]) -> float:
        return sum(v * w for v, w in scores) / sum(w for _, w in scores) if scores else float("nan")

    return {"ms_ssim": weighted(fake_scores), "ms_ssim_real": weighted(real_scores)}


def _agreed(compute: Callable[[], Any]) -> Any:
    """compute() on rank 0 and its result, or its one-line error, on every rank: ranks that looked
    at a run dir on their own could see different checkpoints while training writes or prunes them."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return compute()
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box = [("ok", compute())]
        except UserError as exc:
            box = [("error", str(exc))]
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise UserError(value)
    return value


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
    import contextlib

    check_options(o)
    run_dir = Path(run_dir)
    paths = _agreed(lambda: select_checkpoints(run_dir, o.checkpoints))
    main = not dist.is_initialized() or dist.get_rank() == 0
    extractor, identity = build_extractor(o.extractor, weights=o.weights)
    config = json.loads((run_dir / "config.json").read_text())
    shard_set = ShardSet.open(config["data"])
    real = real_stats(shard_set, extractor, identity, o.split, o.batch_size)
    # Enough real images for per-class pairs; only rank 0 computes MS-SSIM (no collectives in it).
    real_images = read_split(shard_set, o.split, limit=4 * o.diversity_pairs) if o.diversity_pairs and main else None
    results = []
    for path in paths:
        gen = _load_on_every_rank(path)
        sample = _sampler(gen)
        class_probs = ClassProbStats(1008) if hasattr(extractor, "logits_from_features") else None
        started = time.perf_counter()
        context = progress(f"eval step {gen.step}") if progress and main else contextlib.nullcontext()
        with context:
            fake = fake_stats(sample, o.n, extractor, o.batch_size, class_probs=class_probs)
        result = {"step": gen.step, "checkpoint": path.name, "extractor": identity, "split": o.split,
                  **evaluate(real, fake),
                  "world_size": dist.get_world_size() if dist.is_initialized() else 1}  # fmt: skip
        if class_probs is not None:
            result["inception_score"], result["inception_score_std"] = class_probs.score()
        if not main:
            continue
        if real_images is not None:
            result.update(_diversity(gen, real_images, o.diversity_pairs))
        result = with_verdict(result)
        result["seconds"] = round(time.perf_counter() - started, 1)
        _append_line(run_dir / EVAL_LOG, json.dumps(result))
        results.append(result)
        if on_result:
            on_result(result)
    return results


def describe(r: dict[str, Any]) -> str:
    """An eval.jsonl result for people: the measures, then the diversity verdict on a line of its own."""
    extras = f"  precision {r['precision']:.3f} recall {r['recall']:.3f}"
    if "recall_real" in r:
        extras += f" (real {r['precision_real']:.3f} / {r['recall_real']:.3f})"
    if "near_duplicates" in r:
        extras += f"  near-duplicates {r['near_duplicates']:.3f} (real {r['near_duplicates_real']:.3f})"
    if "inception_score" in r:
        extras += f"  IS {r['inception_score']:.3f} ± {r['inception_score_std']:.3f}"
    if "ms_ssim" in r:
        extras += f"  MS-SSIM {r['ms_ssim']:.3f} (real {r['ms_ssim_real']:.3f})"
    line = (f"step {r['step']}: FID {r['fid']:.3f}  KID {r['kid']:.5f} ± {r['kid_std']:.5f}{extras} "
            f"({r['n_real']} real, {r['n_fake']} generated, {r['extractor']})")  # fmt: skip
    if "diversity" in r:
        line += "\n" + describe_verdict(r["diversity"], r["diversity_notes"])
    return line
