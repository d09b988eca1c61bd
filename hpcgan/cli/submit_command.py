"""`python -m hpcgan.submit` (= `hpcgan submit`): train on SLURM through submitit, or evaluate a
run's checkpoints there (--eval RUN: one array element per checkpoint)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hpcgan.cli.container_flags import add_container_flags
from hpcgan.cli.strategy_flags import add_strategy_flags, strategy_overrides
from hpcgan.console import console
from hpcgan.train.presets import PRESETS

if TYPE_CHECKING:
    from hpcgan.launch.submit_options import SubmitOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a training run (or a --sweep as a SLURM array) through submitit")
    p.add_argument("--gan", help=f"preset: {', '.join(PRESETS)}")
    p.add_argument("--data", help="shard set directory (visible from the compute nodes)")
    p.add_argument("--sweep", type=Path, help="a sweep TOML file: base config and a grid or list of overrides")
    p.add_argument("--name", help="job name, and the run dir runs/NAME (default: the gan, or the sweep's name)")
    p.add_argument("--run-dir", type=Path, help="run directory (a sweep's: the folder of its runs)")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per node; one task (rank) per GPU")
    p.add_argument("--tasks-per-node", type=int, default=1, help="ranks per node on CPU nodes")
    p.add_argument("--cpus-per-task", type=int, default=None, help="CPUs per rank (its loader workers included)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per rank (default: --cpus-per-task)")
    p.add_argument("--mem", help="memory per node, e.g. 64G")
    p.add_argument("--partition")
    p.add_argument("--account")
    p.add_argument("--qos")
    p.add_argument("--constraint")
    p.add_argument("--time", type=int, default=60, dest="time_min", help="time limit per job in minutes")
    p.add_argument("--signal-delay", type=int, default=90, dest="signal_delay_s",
                   help="seconds before the limit SLURM sends USR2 (enough for a step and a checkpoint)")  # fmt: skip
    p.add_argument("--max-timeouts", type=int, default=1000, help="requeues after a time limit before giving up")
    p.add_argument("--array-parallelism", type=int, default=16, help="sweep elements running at once")
    p.add_argument("--cluster", default="auto", help="slurm, local (this machine, no SLURM) or auto")
    p.add_argument("--dry-run", action="store_true", help="print the sbatch script and the config; submit nothing")
    add_container_flags(p)
    e = p.add_argument_group("evaluation (--eval RUN: FID etc. of a trained run's checkpoints into RUN/eval.jsonl)")
    e.add_argument("--eval", type=Path, dest="eval_run", metavar="RUN",
                   help="evaluate RUN's checkpoints instead of training: one array element each")  # fmt: skip
    e.add_argument("--checkpoints", default="all", help="all, latest, best or a file in RUN/checkpoints")
    e.add_argument("--n", type=int, default=10000, dest="eval_n", help="generated images per checkpoint")
    e.add_argument("--split", default="train", help="real images: the shard set's train or val split")
    e.add_argument("--extractor", default="random", help="inception, xrv or random (see `hpcgan eval --help`)")
    e.add_argument("--inception-weights", metavar="FILE", help="the pytorch-fid weights file (seen by the nodes)")
    e.add_argument("--xrv-weights", metavar="FILE", help="torchxrayvision DenseNet weights file (seen by the nodes)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.steps=5000")
    add_strategy_flags(p)
    p.set_defaults(run=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    from hpcgan.launch.submit import submit
    from hpcgan.launch.submit_options import SubmitOptions

    fields = SubmitOptions.__dataclass_fields__
    options = SubmitOptions(**{k: v for k, v in vars(args).items() if k in fields})
    options.overrides = [*options.overrides, *strategy_overrides(args)]
    if options.eval_run is not None:
        options.weights = args.xrv_weights if args.extractor == "xrv" else args.inception_weights
        return _run_submit_eval(options)
    submitted, runs, script = submit(options)
    if args.dry_run:
        # Plain print (to stderr, as before): the script must come out exactly as it would be
        # submitted; a rich console wraps long lines at 80 columns on a pipe and rewrites :emoji:.
        print(script, file=sys.stderr)
        _say_if_unchecked()
        for run in runs:
            print(f"# {run.run_dir}: overrides {' '.join(run.overrides) or '(none)'}", file=sys.stderr)
        print(json.dumps(runs[0].config.to_dict(), indent=1), file=sys.stderr)
        return 0
    for s in submitted:
        console.print(f"submitted job {s.job_id}: run dir {s.run_dir}", highlight=False)
        console.print(f"    logs: {s.logs[0]}  {s.logs[1]}", highlight=False)
    watch = submitted[0].run_dir.parent if len(submitted) > 1 else submitted[0].run_dir
    console.print(f"watch with: hpcgan status {watch}")
    return 0


def _say_if_unchecked() -> None:
    from hpcgan.launch import slurm_info

    if not slurm_info.available():
        print("# dry run without sbatch on PATH: the script was not checked against a cluster "
              "(partition, node count)", file=sys.stderr)  # fmt: skip


def _run_submit_eval(options: SubmitOptions) -> int:
    from hpcgan.launch.submit import submit_eval
    from hpcgan.runs.layout import RunPaths

    def say(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)  # paths stay whole, for copy and paste

    submitted, plan, script = submit_eval(options)
    names = " ".join(path.name for path in plan.checkpoints)
    if options.dry_run:
        print(script or "", file=sys.stderr)  # verbatim: no wrapping, no markup or :emoji: codes
        _say_if_unchecked()
        say(f"# {plan.run_dir}: one array element per checkpoint: {names}")
        return 0
    say(f"submitted eval of {plan.run_dir} as job {submitted[0].job_id.split('_')[0]}: "
        f"one array element per checkpoint: {names}")  # fmt: skip
    for s in submitted:
        say(f"submitted job {s.job_id}: {s.checkpoint.name}")
        say(f"    logs: {s.logs[0]}  {s.logs[1]}")
    say(f"job ids: {RunPaths(plan.run_dir).eval_job_record}")
    say(f"results: {RunPaths(plan.run_dir).eval_log}")
    return 0
