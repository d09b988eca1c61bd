"""Where the tasks of a SLURM job meet for torch.distributed: RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR (the first node) and a MASTER_PORT derived from the job id, so every task and every
requeue of the job agree without talking."""

from __future__ import annotations

import os
import zlib

import submitit

# Below Linux's ephemeral range (32768-60999 by default): submitit's own pick, 20000-60000 from the
# job id, landed on a port a client socket of the node held (EADDRINUSE, the job FAILED at start).
PORT_RANGE = (20000, 32768)


def master_port(job_id: str) -> int:
    """The rendezvous port of job `job_id` (an array element's id includes its task)."""
    low, high = PORT_RANGE
    return low + zlib.crc32(job_id.encode()) % (high - low)


def export_distributed_env() -> submitit.helpers.TorchDistributedEnvironment:
    """Export the variables torch.distributed reads; CUDA_VISIBLE_DEVICES stays whole (accelerate
    picks cuda:LOCAL_RANK). A MASTER_PORT already in the environment is submitit's to take."""
    env = submitit.helpers.TorchDistributedEnvironment()
    if "MASTER_PORT" not in os.environ:
        env.master_port = master_port(submitit.JobEnvironment().job_id)
    return env.export(set_cuda_visible_devices=False)
