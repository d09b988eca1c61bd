"""Checks on the values that end up in the sbatch script, before anything is rendered.

submitit single-quotes each #SBATCH value, but a newline inside the quotes still ends the comment
line, and the rest of the value runs as shell in the batch job. So text values must not hold
control characters at all, names must stay single path components, and numbers and sizes must be
what SLURM expects.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpcgan.errors import UserError

if TYPE_CHECKING:
    from hpcgan.launch.submit_options import SubmitOptions

# SLURM's --mem: an integer of megabytes, or with a unit suffix K, M, G or T (0: all of the node's memory).
_SLURM_SIZE = re.compile(r"[0-9]+[KMGTkmgt]?")
RUNTIMES = ("apptainer", "pyxis")  # --container-runtime (hpcgan/launch/container.py)


def check_text(flag: str, value: Any) -> None:
    """`value` must hold no control character (C0, DEL): they would end a line of the script."""
    if value is None:
        return
    text = str(value)
    bad = next((ch for ch in text if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if bad is not None:
        raise UserError(f"{flag} {text!r}: contains a control character ({bad!r}); expected printable text")


def check_name(flag: str, value: str | None) -> None:
    """A name that becomes a folder under a root (runs/NAME, SWEEP/NAME) must stay inside it."""
    if value is None:
        return
    check_text(flag, value)
    if not value or value in (".", "..") or "/" in value:
        raise UserError(f"{flag} {value!r}: expected a plain name (no '/', not '.' or '..') that stays in its folder")


def check_mem(value: str | None) -> None:
    if value is None:
        return
    check_text("--mem", value)
    if not _SLURM_SIZE.fullmatch(value):
        raise UserError(f"--mem {value}: expected a SLURM size: megabytes (4000) or a number with K, M, G or T "
                        "(500M, 32G, 1T)")  # fmt: skip


def check_submit_options(o: SubmitOptions) -> None:
    """Every value of `o` that reaches the sbatch script or a folder name, checked in one place."""
    check_name("--name", o.name)
    for flag, value in (("--account", o.account), ("--qos", o.qos), ("--constraint", o.constraint),
                        ("--partition", o.partition), ("--run-dir", o.run_dir), ("--data", o.data),
                        ("--sweep", o.sweep), ("--eval", o.eval_run), ("--gan", o.gan),
                        ("--checkpoints", o.checkpoints), ("--split", o.split), ("--extractor", o.extractor),
                        ("--xrv-weights/--inception-weights", o.weights), ("--cluster", o.cluster),
                        ("--container", o.container), ("--container-runtime", o.container_runtime)):  # fmt: skip
        check_text(flag, value)
    for override in o.overrides:
        check_text("override", override)
    check_mem(o.mem)
    check_container(o.container, o.container_runtime)
    if o.gpus_per_node < 0:
        raise UserError(f"--gpus-per-node {o.gpus_per_node}: expected 0 (CPU nodes) or more")
    for flag, value in (("--cpus-per-task", o.cpus_per_task), ("--threads", o.threads)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value}: expected at least 1")
    if o.array_parallelism < 1:
        raise UserError(f"--array-parallelism {o.array_parallelism}: expected at least 1")
    if o.max_timeouts < 0:
        raise UserError(f"--max-timeouts {o.max_timeouts}: expected 0 or more")


def check_container(image: str | None, runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise UserError(f"--container-runtime {runtime}: expected {' or '.join(RUNTIMES)}")
    if image is None and runtime != "apptainer":
        raise UserError(f"--container-runtime {runtime}: needs --container IMAGE (the image every task runs in)")
    if image == "":
        raise UserError("--container '': expected an image (a .sif or squashfs file, or a docker:// reference)")


def check_folder(flag: str, folder: Path) -> None:
    """The resolved folder (the current directory included) goes into the script's --output lines."""
    check_text(flag, str(folder))
