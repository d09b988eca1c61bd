"""Where and with what a run ran: hosts, world size and jobs from its start events, and the
software versions, recorded ones when the run has them, else this machine's, labelled so."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from hpcgan.report.collect import RunData
from hpcgan.runs.versions import software_versions


@dataclass(frozen=True)
class Environment:
    versions: dict[str, str]
    versions_source: str  # a sentence saying whose versions they are
    hosts: list[str]
    world_sizes: list[int]
    job_ids: list[str]
    facts: dict[str, str]  # cluster, nodes, tasks per node ... from job.json


def run_environment(run: RunData) -> Environment:
    starts = run.starts
    recorded = next((e["versions"] for e in reversed(starts) if isinstance(e.get("versions"), dict)), None)
    if recorded:
        versions, source = {str(k): str(v) for k, v in recorded.items()}, "recorded by the run at its last start"
    else:
        # Runs don't record versions (yet): say plainly these are the report machine's.
        versions = software_versions()
        source = f"not recorded by the run: these are the versions on {socket.gethostname()}, which made this report"
    facts = {}
    for key, label in (("cluster", "cluster"), ("nodes", "nodes"), ("tasks_per_node", "tasks per node"),
                       ("partition", "partition")):  # fmt: skip
        if run.job.get(key) not in (None, ""):
            facts[label] = str(run.job[key])
    return Environment(
        versions=versions,
        versions_source=source,
        hosts=_unique(str(e["host"]) for e in starts if e.get("host")),
        world_sizes=sorted({int(e["world_size"]) for e in run.events if isinstance(e.get("world_size"), int)}),
        job_ids=_unique([str(e["job_id"]) for e in starts if e.get("job_id")] + [str(run.job.get("job_id") or "")]),
        facts=facts,
    )


def _unique(items) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))  # first-seen order, no blanks
