"""How many torch threads a training process uses.

Torch starts one OpenMP thread per physical core, whatever else runs: beside busy loader workers, or
another job on a shared node, the threads wait on each other and spin (OpenMP's active wait), and a
run slows down tenfold. Unless OMP_NUM_THREADS says otherwise (SLURM jobs export it from
--cpus-per-task), a rank takes the cores it may run on (its affinity mask), shared among the ranks on
the node, minus its loader workers; and idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE, set by
the CLI before torch loads).
"""

from __future__ import annotations

import os

import torch


def thread_budget(loader_workers: int, local_ranks: int = 1) -> int:
    """Torch threads for one rank: its share of the usable cores, minus its loader workers (at least 1)."""
    cores = len(os.sched_getaffinity(0))
    return max(1, cores // max(local_ranks, 1) - loader_workers)


def set_torch_threads(loader_workers: int, local_ranks: int = 1) -> int:
    """Apply the budget unless OMP_NUM_THREADS is set; return the threads torch now uses."""
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(thread_budget(loader_workers, local_ranks))
    return torch.get_num_threads()
