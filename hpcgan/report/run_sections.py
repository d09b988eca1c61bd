"""The lower sections of a run's page as data: the diversity verdict, the timeline of events, the
FID table, the environment and the configuration."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hpcgan.eval.collapse import diversity_verdict
from hpcgan.report.collect import RunData, flat_config, number
from hpcgan.report.environment import Environment
from hpcgan.report.parts import Table
from hpcgan.report.text import MISSING, Rich, code, fid, fmt, rich, source, when
from hpcgan.report.text import config_value as value_text

SIGNALS = {  # what a stop signal usually means on SLURM (hpcgan/train/stop_signals.py)
    "SIGUSR2": "SLURM's warning before a time limit or a preemption; checkpointed, then requeued",
    "SIGTERM": "scontrol requeue, scancel or a preemption without warning; checkpointed",
    "SIGINT": "interrupted by hand (Ctrl-C); checkpointed",
}
DIVERSITY_ROWS = (  # (measure, key of the generated value, key of the real baseline, what it means)
    ("recall", "recall", "recall_real", "share of real images the samples cover (higher: more varied)"),
    ("precision", "precision", "precision_real", "share of samples that look real"),
    ("near-duplicates", "near_duplicates", "near_duplicates_real", "share with a near-twin (lower is better)"),
    ("MS-SSIM of pairs", "ms_ssim", "ms_ssim_real", "similarity of random pairs (lower: more varied)"),
)
VERDICT_TEXT = {"collapsed": "Mode collapse", "low": "Diversity below real data", "ok": "Diversity like real data"}
FID_EXTRAS = {"precision": "precision", "recall": "recall", "inception_score": "IS", "ms_ssim": "MS-SSIM"}


@dataclass(frozen=True)
class Diversity:
    verdict: str  # collapsed | low | ok: the box's colour
    title: str
    where: str  # "at step 40 (hpcgan eval, inception features)"
    reasons: list[str]
    table: Table
    note: Rich


def diversity(run: RunData) -> Diversity | None:
    """The latest evaluation's diversity measures beside the same measures on real images, and the verdict."""
    latest = run.latest_diversity
    if latest is None:
        return None
    verdict, reasons = diversity_verdict(latest.extra)
    rows = [[label, fmt(latest.extra.get(key), ".3f"), fmt(latest.extra.get(real_key), ".3f"), meaning]
            for label, key, real_key, meaning in DIVERSITY_ROWS if key in latest.extra]  # fmt: skip
    return Diversity(verdict, VERDICT_TEXT[verdict], f"at step {latest.step:,} ({source(latest)}, "
                     f"{latest.extractor} features)", reasons,
                     Table(["measure", "samples", "real images", "meaning"], rows, frozenset({1, 2})),
                     rich("The real column measures one half of the real images against the other, at the sample "
                          "count of the generated column: what these numbers look like for data that is diverse by "
                          "definition."))  # fmt: skip


@dataclass(frozen=True)
class EventRow:
    time: str
    step: str
    what: str
    kind: str  # stopped | restart | diverged | completed | "": the colour of `what`
    details: str


def timeline(run: RunData) -> list[EventRow]:
    rows, seen_start = [], False
    for e in run.events:
        rows.append(_event_row(e, first_start=e.get("event") == "start" and not seen_start))
        seen_start |= e.get("event") == "start"
    return rows


def _event_row(e: dict[str, Any], first_start: bool) -> EventRow:
    kind = str(e.get("event", "?"))
    facts = []
    if kind == "start":
        count = int(e.get("restart_count") or 0)
        what = "started" if first_start else f"requeued (restart {count})" if count else "resumed"
        for key, label in (("job_id", "job"), ("host", "host"), ("world_size", "ranks")):
            if e.get(key) not in (None, ""):
                facts.append(f"{label} {e[key]}")
    elif kind == "stopped":
        signal = str(e.get("signal") or "a signal")
        what = f"stopped by {signal}"
        facts.append(SIGNALS.get(signal, "checkpointed and exited"))
    elif kind == "diverged":
        what = f"diverged at step {e.get('failed_at', '?')}"
        facts.append(f"rolled back to step {e.get('step')}")
        if e.get("change"):
            facts.append(str(e["change"]))
    elif kind == "completed":
        what = "completed"
        digests = e.get("param_digests")
        if isinstance(digests, list) and len(digests) > 1:
            same = len({json.dumps(d) for d in digests}) == 1
            facts.append(f"{len(digests)} ranks, parameters {'identical' if same else 'DIFFER between ranks'}")
    else:
        what = kind
    css = {"start": "restart" if not first_start else "", "stopped": "stopped", "diverged": "diverged",
           "completed": "completed"}.get(kind, "")  # fmt: skip
    step = f"{e['step']:,}" if isinstance(e.get("step"), int) else MISSING
    return EventRow(when(e.get("time")), step, what, css, "; ".join(facts))


NO_FINDING = "No Finding"  # hpcgan/data/label_sets.py's, which imports torch (a report must not)


@dataclass(frozen=True)
class PerFinding:
    """The FID of each finding (class) of one evaluation, under the FID of all its images."""

    title: str
    table: Table
    note: Rich


@dataclass(frozen=True)
class Fids:
    table: Table
    note: Rich
    per_finding: PerFinding | None = None


def per_finding(run: RunData) -> PerFinding | None:
    """The newest evaluation with a per-finding FID (fid_per_finding, logged by the training-time
    evaluator of a conditional run or by `hpcgan eval`), chosen as final_fid chooses."""
    measured = [p for p in run.fids if isinstance(p.extra.get("fid_per_finding"), dict) and p.extra["fid_per_finding"]]
    if not measured:
        return None
    latest = max(measured, key=lambda p: (p.step, p.source == "eval", p.n_fake or 0))
    values = latest.extra["fid_per_finding"]
    word = "finding" if NO_FINDING in values else "class"
    n_real = latest.extra.get("n_real")
    rows = [["all images", fid(latest.fid), fmt(n_real, ",.0f"), fmt(latest.n_fake, ",.0f")]]
    for name, value in values.items():
        value = value if isinstance(value, dict) else {}
        rows.append([str(name), fid(number(value.get("fid"))), fmt(value.get("n_real"), ",.0f"),
                     fmt(value.get("n_fake"), ",.0f")])  # fmt: skip
    table = Table([word, "FID", "real images", "generated images"], rows, frozenset({1, 2, 3}), "per-finding")
    note = rich(f"Each {word}: the real images that have it against generated images asked for a label that "
                "holds it. Each comes from fewer images than the overall FID (FID is biased upward at small "
                f"counts): compare {word}s at similar counts, and steps, rather than with the overall FID. A {word} "
                "with fewer than two real images in the split has no row.")  # fmt: skip
    return PerFinding(f"FID per {word} at step {latest.step:,}, {latest.series}", table, note)


def fid_table(run: RunData) -> Fids | None:
    if not run.fids:
        return None
    extras = [k for k in FID_EXTRAS if any(k in p.extra for p in run.fids)]
    rows = []
    for p in run.fids:
        kid = fmt(p.kid, ".4f") + (f" ± {p.kid_std:.4f}" if p.kid_std is not None else "")
        rows.append([f"{p.step:,}", p.series, fid(p.fid), kid] + [fmt(p.extra.get(k)) for k in extras])
    head = ["step", "source (extractor, generated images)", "FID", "KID"] + [FID_EXTRAS[k] for k in extras]
    note: Rich = ()
    if any(p.extractor.startswith("random") for p in run.fids):
        note = rich("The ", code("random"), " extractor is for tests and smoke runs: its FIDs compare runs with each "
                    "other, never with published values.")  # fmt: skip
    return Fids(Table(head, rows, frozenset({0, 2, 3, *range(4, 4 + len(extras))}), "fids"), note, per_finding(run))


@dataclass(frozen=True)
class EnvironmentView:
    where: list[tuple[str, str]]
    versions: list[tuple[str, str]]
    versions_note: str


def environment(env: Environment) -> EnvironmentView:
    where = [("hosts (rank 0, each start)", ", ".join(env.hosts) or MISSING),
             ("world size (ranks)", ", ".join(map(str, env.world_sizes)) or MISSING),
             ("job ids", ", ".join(env.job_ids) or f"{MISSING} (not a scheduler job)")]  # fmt: skip
    return EnvironmentView(where + list(env.facts.items()), list(env.versions.items()),
                           f"Versions {env.versions_source}.")


@dataclass(frozen=True)
class ConfigItem:
    key: str  # the last part of the dotted key
    value: str
    overridden: bool  # set by an override in job.json


@dataclass
class ConfigView:
    groups: dict[str, list[ConfigItem]] = field(default_factory=dict)  # by the key's first part
    note: Rich = ()
    empty: Rich = ()  # when there is no config.json yet


def configuration(run: RunData) -> ConfigView:
    overrides = [str(o) for o in run.job.get("overrides", [])]
    if not run.config:
        queued = [part for o in overrides for part in (code(o), " ")]
        return ConfigView(empty=rich("No config.json yet: the job has not started training.",
                                     *((" Its overrides (job.json): ", *queued) if queued else ())))  # fmt: skip
    overridden = {o.split("=", 1)[0] for o in overrides if "=" in o}
    view = ConfigView(groups={"run": []})
    if overridden:
        view.note = rich("Bold: set by an override (job.json). Any key works as ", code("key=value"), " on the "
                         "command line.")  # fmt: skip
    for key, value in flat_config(run.config).items():
        head, _, rest = key.partition(".")
        item = ConfigItem(key.rsplit(".", 1)[-1], value_text(value), key in overridden)
        view.groups.setdefault(head if rest else "run", []).append(item)
    view.groups = {name: items for name, items in view.groups.items() if items}
    return view
