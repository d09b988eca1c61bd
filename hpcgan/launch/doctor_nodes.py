"""Judging the nodes' reports (hpcgan/launch/doctor_checks.py) of `hpcgan doctor`: one Check each for
the run dir, free space, GPUs, CUDA/NCCL, the all-reduce, clock skew, the Inception weights and the
software versions. Pure functions of the reports, so the verdicts are tested without a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpcgan.launch.doctor_report import Check

CLOCK_WARN_S, CLOCK_FAIL_S = 1.0, 60.0
NCCL_SLOW_GBS = 2.0  # below this between GPU nodes, NCCL is likely on TCP rather than InfiniBand/RoCE
COMPARED = ("python", "hpcgan", "torch", "accelerate", "deepspeed", "submitit")


@dataclass
class Expected:
    gpus_per_node: int
    checkpoint_bytes: int  # one checkpoint of the preset
    checkpoints: int  # how many must fit
    gan: str
    weights_url: str
    weights_env: str


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"


def _every(reports: list[dict[str, Any]]) -> str:
    return f"every node ({len(reports)})" if len(reports) > 1 else reports[0]["node"]


def _names(reports: list[dict[str, Any]]) -> str:
    return ", ".join(r["node"] for r in reports)


def run_dir_check(reports: list[dict[str, Any]]) -> list[Check]:
    broken = [r for r in reports if r["dir"]["error"]]
    if broken:
        first = broken[0]
        return [Check("fail", "run dir writable", f"{first['node']} cannot write {first['dir']['run_dir']}: "
                      f"{first['dir']['error']}" + (f" (also {_names(broken[1:])})" if broken[1:] else ""),
                      "pick a run dir the job's user can create and write on every node")]  # fmt: skip
    first, others = reports[0], reports[1:]
    where = f"{first['dir']['run_dir']} ({first['dir']['filesystem']})"
    paths = {r["dir"]["run_dir"] for r in reports}
    writable = Check("ok", "run dir writable", f"{_names(reports)} wrote and removed a file in "
                     + (where if len(paths) == 1 else "the run dir as each names it"))  # fmt: skip
    if not others:
        return [writable, Check("skip", "run dir shared", "one node: visibility from the others not checked")]
    if len(paths) > 1:
        seen = "; ".join(f"{r['node']}: {r['dir']['run_dir']}" for r in reports)
        return [writable, Check("fail", "run dir shared", f"the run dir names a different folder on each node ({seen})",
                                "use one path every node resolves alike: no per-node variable in "
                                "--run-dir")]  # fmt: skip
    blind = [r for r in others if r["dir"].get("token_seen") != first["dir"]["token"]]
    if blind:
        fs = ", ".join(sorted({r["dir"]["filesystem"] for r in blind}))
        return [writable, Check("fail", "run dir shared", f"{_names(blind)} do not see the file {first['node']} wrote "
                                f"in {where}: a node-local disk ({fs} on {_names(blind)})",
                                "put the run dir on a filesystem every node mounts (NFS, Lustre, GPFS, "
                                "BeeGFS; often $SCRATCH or $HOME)")]  # fmt: skip
    return [writable, Check("ok", "run dir shared", f"{_names(others)} read what {first['node']} wrote in {where}")]


def space_check(reports: list[dict[str, Any]], e: Expected) -> Check:
    free = [(r["dir"]["free_bytes"], r["node"]) for r in reports if "free_bytes" in r["dir"]]
    if not free:
        return Check("skip", "free space", "no node could reach the run dir")
    least, node = min(free)
    need = e.checkpoints * e.checkpoint_bytes
    detail = (f"{_gb(least)} free (least: {node}); {e.checkpoints} checkpoints of {e.gan} need {_gb(need)} "
              f"({_gb(e.checkpoint_bytes)} each)")  # fmt: skip
    fix = "free space, pick a run dir on a bigger filesystem, or lower checkpoint.keep"
    if least < need:
        return Check("fail", "free space", detail, fix)
    if least < 2 * need:
        return Check("warn", "free space", f"{detail}: samples, logs and eval results come on top", fix)
    return Check("ok", "free space", detail)


def gpu_checks(reports: list[dict[str, Any]], e: Expected) -> list[Check]:
    seen = "; ".join(f"{r['node']}: {len(r['gpus'])}x {r['gpus'][0]}" if r["gpus"] else f"{r['node']}: none"
                     for r in reports)  # fmt: skip
    short = [r for r in reports if len(r["gpus"]) < e.gpus_per_node]
    if short:
        cpu_build = any(r["cuda"] is None for r in short)
        return [Check("fail", "GPUs", f"{e.gpus_per_node} per node requested, seen {seen}"
                      + (" (torch is a CPU build: torch.version.cuda is None)" if cpu_build else ""),
                      "install a CUDA build of torch" if cpu_build else "check --gpus-per-node and the partition")]
    if not any(r["gpus"] for r in reports):
        return [Check("ok", "GPUs", f"none ({seen}): CPU nodes, ranks talk over gloo"
                      + ("" if e.gpus_per_node else "; pass --gpus-per-node G to probe GPU nodes")),
                Check("skip", "CUDA / NCCL", f"no GPUs (torch {_build(reports[0])})")]  # fmt: skip
    names = {tuple(r["gpus"]) for r in reports}
    gpus = Check("ok" if len(names) == 1 else "warn", "GPUs", seen,
                 "ask for one GPU type (--constraint): the slowest GPU sets every rank's pace")  # fmt: skip
    stack = {(r["cuda"], r["nccl"]) for r in reports}
    detail = "; ".join(f"{r['node']}: CUDA {r['cuda']}, NCCL {r['nccl']}" for r in reports)
    if len(stack) == 1:
        cuda, nccl = stack.pop()
        return [gpus, Check("ok", "CUDA / NCCL", f"CUDA {cuda}, NCCL {nccl} on {_every(reports)}")]
    return [gpus, Check("warn", "CUDA / NCCL", detail, "use one torch build on every node (one shared venv)")]


def _build(report: dict[str, Any]) -> str:
    return f"built with CUDA {report['cuda']}" if report["cuda"] else "is a CPU build"


def allreduce_check(reports: list[dict[str, Any]]) -> Check:
    if len(reports) == 1:
        return Check("skip", "all-reduce", "one node: no link between nodes to time")
    failed = [r for r in reports if r.get("dist_error")]
    if failed:
        return Check("fail", "all-reduce", f"the rendezvous failed on {_names(failed)}: {failed[0]['dist_error']}",
                     "the nodes must reach the first node (MASTER_ADDR) on TCP ports 20000-32767; set "
                     "GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME to the nodes' network")  # fmt: skip
    a = reports[0]["allreduce"]
    detail = (f"{a['busbw_gbs']:.2f} GB/s bus bandwidth between {len(reports)} nodes ({a['backend']}, "
              f"{a['bytes'] // 2**20} MiB in {a['seconds'] * 1e3:.0f} ms; 2(n-1)/n x bytes / time)")  # fmt: skip
    if "nccl" in a["backend"] and a["busbw_gbs"] < NCCL_SLOW_GBS:
        return Check("warn", "all-reduce", f"{detail}: NCCL is likely on TCP, not InfiniBand/RoCE",
                     "run with NCCL_DEBUG=INFO to see the transport; check NCCL_IB_DISABLE and NCCL_SOCKET_IFNAME")
    return Check("ok", "all-reduce", detail)


def clock_check(reports: list[dict[str, Any]]) -> Check:
    offsets = reports[0].get("clock_offsets_s")
    if len(reports) == 1 or offsets is None:
        why = "one node: no other clock to compare" if len(reports) == 1 else "no rendezvous (see all-reduce)"
        return Check("skip", "clock skew", why)
    worst = max(range(len(offsets)), key=lambda i: abs(offsets[i]))
    detail = f"largest offset from {reports[0]['node']}: {offsets[worst] * 1e3:+.1f} ms ({reports[worst]['node']})"
    fix = "run chrony or ntpd on every node (ask the admins): skew misdates checkpoints and breaks munge"
    if abs(offsets[worst]) >= CLOCK_FAIL_S:
        return Check("fail", "clock skew", detail, fix)
    if abs(offsets[worst]) >= CLOCK_WARN_S:
        return Check("warn", "clock skew", detail, fix)
    return Check("ok", "clock skew", detail)


def inception_check(reports: list[dict[str, Any]], e: Expected) -> Check:
    missing = [r for r in reports if r["inception"]["path"] is None]
    if missing:
        return Check("warn", "Inception weights", f"not found on {_names(missing)} (looked at --inception-weights, "
                     f"${e.weights_env}, the torch hub cache): `eval --extractor inception` (FID) fails there",
                     f"download {e.weights_url} once, to a folder every node sees, and set {e.weights_env}=FILE")
    paths = sorted({r["inception"]["path"] for r in reports})
    return Check("ok", "Inception weights", f"{', '.join(paths)} on {_every(reports)}")


def versions_check(reports: list[dict[str, Any]]) -> Check:
    differ = [k for k in COMPARED if len({r["versions"].get(k) for r in reports}) > 1]
    if differ:
        detail = "; ".join(f"{k}: " + ", ".join(f"{r['versions'].get(k)} on {r['node']}" for r in reports)
                           for k in differ)  # fmt: skip
        return Check("fail", "versions", detail,
                     "install one environment for every node (a venv on a shared filesystem)")
    v = reports[0]["versions"]
    return Check("ok", "versions", f"torch {v['torch']}, accelerate {v['accelerate']}, deepspeed {v['deepspeed']}, "
                 f"python {v['python']} on {_every(reports)}")  # fmt: skip


def node_checks(reports: list[dict[str, Any]], e: Expected) -> list[Check]:
    """Every node check, in the order they print; `reports` sorted by rank."""
    return [*run_dir_check(reports), space_check(reports, e), *gpu_checks(reports, e), allreduce_check(reports),
            clock_check(reports), inception_check(reports, e), versions_check(reports)]  # fmt: skip
