"""What `hpcgan submit` was asked for: the flags, as one typed record that planning, checking and
submission share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SubmitOptions:
    gan: str | None = None
    data: str | None = None
    run_dir: Path | None = None  # default runs/<name or gan>
    name: str | None = None
    overrides: list[str] = field(default_factory=list)
    sweep: Path | None = None
    nodes: int = 1
    tasks_per_node: int = 1  # one task per GPU (--gpus-per-node sets both on GPU nodes)
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    threads: int | None = None  # torch threads per rank (OMP_NUM_THREADS); default: cpus_per_task
    mem: str | None = None  # e.g. 32G
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    time_min: int = 60
    signal_delay_s: int = 90
    max_timeouts: int = 1000  # requeues after a time limit before giving up ("without limit")
    array_parallelism: int = 16
    cluster: str = "auto"  # slurm | local | auto
    container: str | None = None  # an image every task runs in (hpcgan/launch/container.py)
    container_runtime: str = "apptainer"  # apptainer | pyxis
    dry_run: bool = False
    # --eval RUN: evaluate RUN's checkpoints instead of training (submit_eval)
    eval_run: Path | None = None
    checkpoints: str = "all"  # all | latest | best | one file in RUN/checkpoints
    eval_n: int = 10000  # generated images per checkpoint
    extractor: str = "random"
    weights: str | None = None  # the extractor's weights file
    split: str = "train"
