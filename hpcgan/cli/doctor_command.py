"""`hpcgan doctor`: check a SLURM cluster before the first run on it (one line per check, ok / warn /
fail / skip with the fix); exit 1 when any check fails."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hpcgan.cli.container_flags import add_container_flags
from hpcgan.console import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the cluster, the run dir and the nodes before the first run")
    p.add_argument("--run-dir", default="runs", help="the run dir to check, as the jobs will name it; $VARIABLES "
                   "(e.g. $SCRATCH) are expanded on each node (default: runs)")  # fmt: skip
    p.add_argument("--nodes", type=int, help="nodes of the probe job, one task each (default 2)")
    p.add_argument("--partition", help="the partition to probe and whose preemption to check (default: SLURM's)")
    p.add_argument("--gpus-per-node", type=int, default=0, help="GPUs to ask for per node (GPU nodes show none "
                   "without it)")  # fmt: skip
    p.add_argument("--account")
    p.add_argument("--qos")
    p.add_argument("--constraint")
    p.add_argument("--gan", default=None, help="preset whose checkpoints must fit in the run dir (default r3gan256)")
    p.add_argument("--checkpoints", type=int, help="checkpoints that must fit (default: the preset's "
                   "checkpoint.keep + 2: one being written, and best.pt)")  # fmt: skip
    p.add_argument("--inception-weights", metavar="FILE", help="the FID Inception weights file eval will be given "
                   "(default: where eval looks: $HPCGAN_INCEPTION_WEIGHTS, the torch hub cache)")  # fmt: skip
    p.add_argument("--here", action="store_true", help="check this machine in this process, no probe job")
    p.add_argument("--timeout", type=int, default=300, dest="timeout_s",
                   help="seconds the probe job may wait in the queue before it is cancelled (default 300)")  # fmt: skip
    p.add_argument("--time", type=int, default=5, dest="time_min", help="the probe job's time limit in minutes")
    p.add_argument("--logs", type=Path, default=Path("hpcgan-doctor"),
                   help="folder for the probe's submitit files, on a filesystem the nodes see (default: "
                   "./hpcgan-doctor)")  # fmt: skip
    add_container_flags(p, "the probe's tasks (to check the nodes as your jobs will see them)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON instead of lines")
    p.set_defaults(run=run_doctor_command)


def run_doctor_command(args: argparse.Namespace) -> int:
    from hpcgan.launch.doctor import DEFAULT_GAN, DoctorOptions, run_doctor
    from hpcgan.launch.doctor_report import exit_code, print_checks

    fields = DoctorOptions.__dataclass_fields__
    options = DoctorOptions(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    options.gan = args.gan or DEFAULT_GAN

    def say(text: str) -> None:
        console.print(text, highlight=False, markup=False)  # progress on stderr; the checks go to stdout

    checks = run_doctor(options, say)
    if args.json:
        print(json.dumps([c.to_dict() for c in checks], indent=1))
    else:
        print_checks(checks)
    return exit_code(checks)
