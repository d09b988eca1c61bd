"""The arms of `python -m hpcgan.bench quality` and how each is trained for a wall-clock budget.

Every arm is a real `hpcgan train` in its own process (the command a user runs), conditional on the
shard set's classes, batch 32, one loader worker (the main process needs the other core).

Equal wall-clock, not equal steps: the arms differ several-fold in cost per step (R1 and R2 make a
D step of R3GAN three passes through D). A short calibration run measures each arm's images/s, the
arm then trains for the steps that fill its budget, so its LR/gamma/beta2 schedules and ADA's speed
span the run it actually gets; a SIGTERM at 1.3x the budget (a checkpoint is saved at the next step,
as for a SLURM requeue) bounds an arm that slows down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcgan.errors import UserError
from hpcgan.train.presets import cpu_overrides

CALIBRATION_STEPS = 12
TRAINED_RECORD = "bench-trained.json"  # in an arm's run dir: how it was trained (for --reuse)
DEADLINE_FACTOR = 1.3
BATCH = 32
R3GAN_CPU = cpu_overrides("r3gan64")  # the presets' widths are for GPUs: see cpu_overrides


@dataclass(frozen=True)
class Arm:
    key: str
    label: str
    gan: str
    overrides: tuple[str, ...]


def quality_arms(size: int) -> list[Arm]:
    res = f"model.resolution={size}"
    r3gan = f"r3gan{size}" if size in (64, 128, 256, 512) else "r3gan64"
    return [
        # The notebooks hpcgan replaces (seed 000): a BatchNorm generator fed z * embed(class), a D
        # that also names the class, BCE with the auxiliary class loss, no EMA.
        Arm("seed-acgan", "seed-style AC-GAN (the floor)", "acgan256",
            (res, "model.d_batchnorm=true", "model.g_conditioning=multiply", "train.ema=0")),
        # README's recommended recipe before this benchmark existed, as it was: the class concatenated
        # to z (cgan64 now multiplies it in; see hpcgan/train/presets.py).
        Arm("cgan-recipe", "cgan64 recipe (SN, hinge, DiffAugment)", "cgan64",
            (res, "model.g_conditioning=concat", "model.g_width=32", "model.d_width=32", "model.d_spectral_norm=true",
             "loss.kind=hinge",
             "train.diffaugment=brightness,contrast,translation", "optim.beta1=0.0", "optim.beta2=0.99")),
        Arm("r3gan", r3gan, r3gan, (res, "model.conditional=projection", *R3GAN_CPU)),
        Arm("r3gan-ada", f"{r3gan} + ADA", r3gan, (res, "model.conditional=projection", *R3GAN_CPU, "train.ada=true")),
    ]  # fmt: skip


def _hpcgan(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "hpcgan", *map(str, args)]


def _common(arm: Arm, data: Path, run_dir: Path) -> list[str]:
    return _hpcgan("train", "--gan", arm.gan, "--data", data, "--run-dir", run_dir, "--resume", "none",
                   *arm.overrides, f"train.batch_size={BATCH}", "train.num_workers=1", "train.log_every=5")  # fmt: skip


def _run(cmd: list[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"{what} failed (exit {proc.returncode}): {last}")
    return proc


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [r for r in rows if "loss_d" in r]


def calibrate(arm: Arm, data: Path, scratch: Path) -> float:
    """Images/s of the arm's training, from a short run (its first steps included, so a little low)."""
    run_dir = scratch / f"calibrate-{arm.key}"
    _run([*_common(arm, data, run_dir), f"train.steps={CALIBRATION_STEPS}", "train.log_every=1",
          "train.sample_every=0", "checkpoint.every=0"], f"calibrating {arm.key}")  # fmt: skip
    rows = _metrics(run_dir)
    if not rows:
        raise UserError(f"calibrating {arm.key}: no metrics in {run_dir}")
    return float(rows[-1]["images_per_s"])


def train_for(arm: Arm, data: Path, run_dir: Path, seconds: float, rate: float,
              progress: Callable[[int, int], None]) -> dict[str, Any]:  # fmt: skip
    """Train `arm` for about `seconds` into `run_dir`; `progress(step, steps)` while it runs."""
    steps = max(int(seconds * rate / BATCH), 10)
    cmd = [*_common(arm, data, run_dir), f"train.steps={steps}", f"train.sample_every={max(steps // 4, 1)}",
           "checkpoint.every=0"]  # fmt: skip
    started = time.perf_counter()
    log = run_dir.parent / f"{run_dir.name}.log"
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the trainer
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, COLUMNS="160"))
        deadline, stopped = started + DEADLINE_FACTOR * seconds + 60, False
        while proc.poll() is None:
            time.sleep(2)
            rows = _metrics(run_dir)
            progress(rows[-1]["step"] if rows else 0, steps)
            if time.perf_counter() > deadline and not stopped:
                proc.send_signal(signal.SIGTERM)  # checkpoint at the next step, then exit
                stopped = True
    if proc.returncode not in (0, 128 + signal.SIGTERM):
        last = (log.read_text().strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"training {arm.key} failed (exit {proc.returncode}, see {log}): {last}")
    rows = _metrics(run_dir)
    result = {"steps_planned": steps, "steps": rows[-1]["step"] if rows else 0, "stopped_at_deadline": stopped,
              "seconds": round(time.perf_counter() - started, 1), "images_per_s_calibrated": round(rate, 1),
              "kimg": rows[-1].get("kimg") if rows else None, "ada_p": rows[-1].get("ada_p") if rows else None}
    (run_dir / TRAINED_RECORD).write_text(json.dumps({"arm": arm.overrides, "gan": arm.gan, "budget_s": seconds,
                                                      **result}))  # fmt: skip
    return result


def reusable(run_dir: Path, arm: Arm, seconds: float) -> dict[str, Any] | None:
    """The training record of an earlier benchmark's run of this very arm and budget, if it finished."""
    try:
        record = json.loads((run_dir / TRAINED_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = record.get("arm") == list(arm.overrides) and record.get("gan") == arm.gan
    if not same or abs(record.get("budget_s", -1) - seconds) > 1 or final_grid(run_dir) is None:
        return None
    return {k: v for k, v in record.items() if k not in ("arm", "gan", "budget_s")}


def evaluate_arm(run_dir: Path, extractor: str, weights: str | None, n: int, memorization_n: int) -> dict[str, Any]:
    """`hpcgan eval` (FID, KID, precision/recall, near-duplicates, MS-SSIM beside real) and
    `hpcgan memorization` (near copies of training images) on the arm's final checkpoint."""
    extra = ["--inception-weights", weights] if weights and extractor == "inception" else []
    extra += ["--xrv-weights", weights] if weights and extractor == "xrv" else []
    _run(_hpcgan("eval", run_dir, "--extractor", extractor, "--n", n, *extra), f"hpcgan eval {run_dir}")
    result = json.loads((run_dir / "eval.jsonl").read_text().splitlines()[-1])
    mem_extra = ["--weights", weights] if weights else []
    _run(_hpcgan("memorization", run_dir, "--n", memorization_n, "--extractor", extractor, *mem_extra),
         f"hpcgan memorization {run_dir}")  # fmt: skip
    reports = sorted((run_dir / "memorization").glob("step-*/memorization.json"))
    memo = json.loads(reports[-1].read_text())
    fp = memo["baseline_near_copy_fraction"]
    result["near_copies"] = memo["near_copy_fraction"]
    result["near_copies_real"] = fp["heldout"] if fp["heldout"] is not None else fp["train_leave_one_out"]
    return result


def final_grid(run_dir: Path) -> Path | None:
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    return grids[-1] if grids else None
