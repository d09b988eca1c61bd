"""`hpcgan train --gan NAME --data SHARDS [key=value ...]`: parse, build the config, hand off."""

from __future__ import annotations

import argparse
from pathlib import Path

from hpcgan.cli.strategy_flags import add_strategy_flags, strategy_overrides
from hpcgan.console import console, step_progress
from hpcgan.train.presets import PRESETS, preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN of the zoo on a shard set (1 process or N ranks)")
    p.add_argument("--gan", required=True, help=f"preset: {', '.join(PRESETS)}")
    p.add_argument("--data", required=True, type=Path, help="shard set directory")
    p.add_argument("--run-dir", type=Path, default=None, help="run directory (default runs/<gan>)")
    p.add_argument("--resume", default="auto", help="auto (latest valid checkpoint in the run dir), none, or a PATH")
    p.add_argument("--overwrite", action="store_true",
                   help="with --resume none into a run dir that has checkpoints: move them (and its logs) aside "
                   "into RUN/replaced-<time>/ instead of refusing")  # fmt: skip
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.steps=500 optim.lr_g=1e-4 seed=1")
    add_strategy_flags(p)
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from hpcgan.train.config import apply_overrides  # torch loads only for the commands that need it
    from hpcgan.train.process_exit import exit_now
    from hpcgan.train.stop_signals import REQUEUE_EXIT_CODE, StopSignals
    from hpcgan.train.trainer import Trainer  # torch and accelerate load only for this command

    config = apply_overrides(preset(args.gan), [*args.overrides, *strategy_overrides(args)])
    config.data = str(args.data)
    run_dir = args.run_dir or Path("runs") / config.gan
    with StopSignals() as stop:  # from the start: a USR2 during set-up must not kill the job
        trainer = Trainer(config, run_dir, args.resume, overwrite=args.overwrite)
        main = trainer.acc.is_main_process
        if main:
            resumed = trainer.resumed_from
            start = f"resumed from {resumed} at step {trainer.step}" if resumed else "from scratch"
            console.print(
                f"{config.gan}: {config.train.steps} steps, batch {config.train.batch_size} per rank x "
                f"{trainer.world} rank(s) = {config.train.batch_size * trainer.world} global, {start}; "
                f"run dir {run_dir}"
            )
            with step_progress(f"{config.gan} steps", config.train.steps, trainer.step) as update:
                try:
                    outcome = trainer.train(lambda step, m: update(step, _status(m)), stop)
                finally:
                    trainer.close()
        else:
            try:
                outcome = trainer.train(stop=stop)
            finally:
                trainer.close()
    if outcome != "completed":
        if main:
            console.print(f"stopped by {outcome} at step {trainer.step}; checkpoint saved, the same command resumes")
        code = REQUEUE_EXIT_CODE if outcome == "SIGUSR2" else 128 + 15
    else:
        if main:
            console.print(f"done: step {trainer.step}; samples and checkpoints in {run_dir}")
        code = 0
    if trainer.world > 1:
        exit_now(code)  # everything is written; skip the teardown that can abort (hpcgan/train/process_exit.py)
    return code


def _status(metrics: dict[str, float]) -> str:
    if not metrics:
        return ""
    ada = f"  ADA p {metrics['ada_p']:.2f}" if "ada_p" in metrics else ""
    return (
        f"D {metrics['loss_d']:.3f}  G {metrics['loss_g']:.3f}  "
        f"D(real) {metrics['d_real_acc']:.2f}{ada}  {metrics['images_per_s']:.0f} img/s"
    )
