"""What `hpcgan doctor` measures on each node, one task per node: the run dir as this node sees it,
free space there, GPUs, CUDA and NCCL, software versions, the Inception weights, this node's clock
against rank 0's, and a timed all-reduce between the nodes. Returns plain facts (a JSON-able dict);
hpcgan/launch/doctor_nodes.py judges them.

Visibility: rank 0 writes a random token into the run dir *before* it joins the rendezvous, so when
init_process_group returns (every rank joined) the others read it; a node that sees another folder,
or a node-local disk at the same path, does not find it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from hpcgan.launch.capacity_plan import ring_allreduce_bytes

TOKEN_PREFIX = ".hpcgan-doctor-"
RENDEZVOUS_TIMEOUT_S = 90
CLOCK_ROUNDS = 5
# Enough bytes that the time is the link's, not the call's; little enough for CPU nodes and gloo.
ALLREDUCE_MB = {"cuda": 256, "cpu": 16}
ALLREDUCE_ITERS = {"cuda": 10, "cpu": 3}


def node_name() -> str:
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def expand(run_dir: str) -> Path:
    """`run_dir` as this node names it: $VARIABLES (e.g. $SCRATCH) and ~ expanded here."""
    return Path(os.path.expanduser(os.path.expandvars(run_dir)))


def filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (nfs4, lustre, gpfs, ext4, tmpfs...), from /proc/mounts."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    real = str(path.resolve())
    best = max((m for m in mounts if real == m[0] or real.startswith(m[0].rstrip("/") + "/")),
               key=lambda m: len(m[0]), default=["/", "?"])  # fmt: skip
    return best[1]


def run_dir_facts(run_dir: Path, token_name: str, rank: int) -> dict[str, Any]:
    """Create the run dir, write a file of our own there (and remove it); rank 0 leaves the token."""
    facts: dict[str, Any] = {"run_dir": str(run_dir), "error": None, "token": None}
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        own = run_dir / f"{token_name}-rank{rank}"
        own.write_text(node_name())
        own.unlink()
        if rank == 0:
            facts["token"] = secrets.token_hex(8)
            (run_dir / token_name).write_text(facts["token"])
        usage = shutil.disk_usage(run_dir)
        facts |= {"free_bytes": usage.free, "filesystem": filesystem(run_dir)}
    except OSError as exc:
        facts["error"] = f"{type(exc).__name__}: {exc.strerror or exc}"
    return facts


def read_token(run_dir: Path, token_name: str, wait_s: float) -> str | None:
    """Rank 0's token as this node reads it (None: not there), polling up to `wait_s`."""
    deadline = time.time() + wait_s
    while True:
        try:
            return (run_dir / token_name).read_text()
        except OSError:
            if time.time() >= deadline:
                return None
            time.sleep(0.5)


def gpu_facts() -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"cuda": torch.version.cuda, "gpus": [], "nccl": None}
    if torch.cuda.is_available():
        facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        facts["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    return facts


def inception_facts(weights: str | None) -> dict[str, Any]:
    """Where `hpcgan eval --extractor inception` would find the weights on this node (never downloads)."""
    from hpcgan.errors import UserError
    from hpcgan.eval.inception import find_weights

    try:
        return {"path": str(find_weights(weights)), "error": None}
    except UserError as exc:
        return {"path": None, "error": str(exc)}


def clock_offsets(rounds: int = CLOCK_ROUNDS) -> list[float]:
    """Each rank's time.time() minus rank 0's, read right after a barrier; the median over rounds
    (one slow barrier exit does not count)."""
    import torch.distributed as dist

    samples: list[list[float]] = []
    for _ in range(rounds):
        dist.barrier()
        now: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(now, time.time())
        samples.append([t - now[0] for t in now])
    return [statistics.median(column) for column in zip(*samples, strict=True)]


def timed_allreduce(device: str) -> dict[str, Any]:
    """Bus bandwidth of a sum all-reduce, NCCL's convention: 2(n-1)/n x bytes / seconds, in GB/s."""
    import torch
    import torch.distributed as dist

    n = dist.get_world_size()
    nbytes = ALLREDUCE_MB[device] * 2**20
    tensor = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    dist.all_reduce(tensor)  # warm-up: connections and buffers are set up on first use
    sync()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(ALLREDUCE_ITERS[device]):
        dist.all_reduce(tensor)
    sync()
    seconds = (time.perf_counter() - start) / ALLREDUCE_ITERS[device]
    seconds = max(gathered for gathered in _gather(seconds))  # the slowest rank sets the pace
    return {"backend": "nccl" if device == "cuda" else "gloo", "bytes": nbytes, "seconds": seconds,
            "busbw_gbs": ring_allreduce_bytes(nbytes, n) / seconds / 1e9}  # fmt: skip


def _gather(value: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def probe(run_dir: str, weights: str | None, rank: int, world: int, token_name: str) -> dict[str, Any]:
    """This node's facts; with `world` > 1 the caller has exported RANK, MASTER_ADDR etc. (env://)."""
    from hpcgan.runs.versions import software_versions

    path = expand(run_dir)
    report: dict[str, Any] = {"node": node_name(), "rank": rank, "world": world,
                              "dir": run_dir_facts(path, token_name, rank)}  # fmt: skip
    report |= {"versions": software_versions(), "inception": inception_facts(weights), **gpu_facts()}
    if world == 1:
        _remove_token(path, token_name, rank)
        return report
    import torch
    import torch.distributed as dist

    device = "cuda" if report["gpus"] else "cpu"
    try:
        if device == "cuda":
            torch.cuda.set_device(0)  # one task per node: the node's first GPU carries the link test
        backend = "cpu:gloo,cuda:nccl" if device == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=RENDEZVOUS_TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - a rendezvous fails in many ways; all of them are the finding
        report["dist_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        report["dir"]["token_seen"] = None if rank == 0 else read_token(path, token_name, 10)
        _remove_token(path, token_name, rank)
        return report
    # Every rank joined, so rank 0 has written its token: read it now (a moment more for NFS)
    report["dir"]["token_seen"] = None if rank == 0 else read_token(path, token_name, 2)
    report["clock_offsets_s"] = clock_offsets()
    report["allreduce"] = timed_allreduce(device)
    dist.barrier()  # everyone has read the token
    _remove_token(path, token_name, rank)
    dist.destroy_process_group()
    return report


def _remove_token(path: Path, token_name: str, rank: int) -> None:
    if rank == 0:
        (path / token_name).unlink(missing_ok=True)


class NodeProbe:
    """The callable submitit runs on each task of the probe job (one per node)."""

    def __init__(self, run_dir: str, weights: str | None) -> None:
        self.run_dir, self.weights = run_dir, weights

    def __call__(self) -> dict[str, Any]:
        import submitit

        from hpcgan.launch.rendezvous import export_distributed_env
        from hpcgan.train.process_exit import exit_now_at_interpreter_exit

        env = export_distributed_env()
        token_name = TOKEN_PREFIX + submitit.JobEnvironment().job_id
        report = probe(self.run_dir, self.weights, env.rank, env.world_size, token_name)
        if env.world_size > 1:
            exit_now_at_interpreter_exit(0)  # after submitit wrote the result (hpcgan/train/process_exit.py)
        return report
