"""The HTML of a run's page and of a sweep's page: static, one file each, styles inline, a few
lines of inline JavaScript for sorting the sweep table. No external script, font or stylesheet,
so a page opens offline, from a cluster's file system or a copied folder."""

from __future__ import annotations

import datetime
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from typing import Any

from hpcgan.cli.report.collect import FidPoint, RunData, flat_config, number, varying_keys
from hpcgan.cli.report.environment import Environment
from hpcgan.eval.collapse import COLLAPSED, diversity_verdict

LATEST_DISPLAY_PX = 520  # CSS width of the latest grid (img.latest)
SIGNALS = {  # what a stop signal usually means on SLURM (hpcgan/train/stop_signals.py)
    "SIGUSR2": "SLURM's warning before a time limit or a preemption; checkpointed, then requeued",
    "SIGTERM": "scontrol requeue, scancel or a preemption without warning; checkpointed",
    "SIGINT": "interrupted by hand (Ctrl-C); checkpointed",
}


@dataclass(frozen=True)
class Grid:
    step: int
    thumb: str  # href of the small copy, relative to the page
    full: str  # href of the full grid in RUN/samples
    width: int = 0  # px of the small copy: below the display width it is upscaled, with crisp pixels


@dataclass
class RunAssets:
    """What build.py wrote for a run's page, as hrefs relative to it."""

    figures: dict[str, str] = field(default_factory=dict)  # losses, accuracy, fid, speed
    grids: list[Grid] = field(default_factory=list)
    grids_total: int = 0
    latest: Grid | None = None  # the last grid, larger
    up: tuple[str, str] | None = None  # (href, name): the sweep page this run belongs to
    tensorboard: str | None = None


@dataclass(frozen=True)
class SweepRow:
    run: RunData
    color: str
    report: str  # href of the run's page
    thumb: str | None  # href of its last grid's small copy


# -- small formatters -----------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".3g", missing: str = "–") -> str:
    v = number(value)
    return missing if v is None else format(v, spec)


def _fid(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}" if value >= 10 else f"{value:.3f}"


def _when(t: Any) -> str:
    v = number(t)
    if v is None:
        return "–"
    return datetime.datetime.fromtimestamp(v).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _source(p: FidPoint) -> str:
    return "hpcgan eval" if p.source == "eval" else "in training"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _value(value: Any) -> str:
    """Config values as one would type them in key=value (strings unquoted unless empty)."""
    return value if isinstance(value, str) and value else json.dumps(value)


def _stat(label: str, value: str, sub: str = "") -> str:
    sub_html = f'<div class="s">{escape(sub)}</div>' if sub else ""
    return f'<div class="stat"><div class="k">{escape(label)}</div><div class="v">{escape(value)}</div>{sub_html}</div>'


def _badge(state: str) -> str:
    return f'<span class="badge {escape(state.replace(" ", "-"))}">{escape(state)}</span>'


def _table(head: list[str], rows: list[list[str]], numeric: set[int] | None = None, cls: str = "") -> str:
    """Cells are HTML already (escape before); `numeric` columns align right."""
    numeric = numeric or set()
    th = "".join(f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>" for r in rows
    )  # fmt: skip
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _document(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request (a 404 in the console on a server)
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main>{js}</body></html>\n"
    )


# -- a run ----------------------------------------------------------------------------------------


def _duration(run: RunData) -> float | None:
    times = [t for t in (number(e.get("time")) for e in run.events) if t is not None]
    return max(times) - min(times) if len(times) > 1 else None


def _run_header(run: RunData, assets: RunAssets, made: float) -> str:
    up = ""
    if assets.up:
        up = f'<nav><a href="{escape(assets.up[0])}">← sweep {escape(assets.up[1])}</a></nav>'
    c = run.config
    what = [c.get("gan"), f"{c['model']['resolution']} px" if isinstance(c.get("model"), dict)
            and "resolution" in c["model"] else None, f"seed {c['seed']}" if "seed" in c else None]  # fmt: skip
    updated = f"last written {_when(run.updated)}" if run.updated else "nothing written yet"
    sub = " · ".join(str(w) for w in what if w)
    return (
        f"<header>{up}<h1>{escape(run.name)} {_badge(run.state)}{_collapse_badge(run)}</h1>"
        f'<div class="sub">{escape(sub)}</div>'
        f'<div class="path">{escape(str(run.path))} · {escape(updated)} · report made {escape(_when(made))}</div>'
        "</header>"
    )


def _collapse_badge(run: RunData) -> str:
    """A red badge beside the state: a completed run that draws one image must not look green."""
    latest = run.latest_diversity
    if latest is None or diversity_verdict(latest.extra)[0] != COLLAPSED:
        return ""
    return ' <span class="badge collapsed">mode collapse</span>'


DIVERSITY_ROWS = (  # (measure, key of the generated value, key of the real baseline, what it means)
    ("recall", "recall", "recall_real", "share of real images the samples cover (higher: more varied)"),
    ("precision", "precision", "precision_real", "share of samples that look real"),
    ("near-duplicates", "near_duplicates", "near_duplicates_real", "share with a near-twin (lower is better)"),
    ("MS-SSIM of pairs", "ms_ssim", "ms_ssim_real", "similarity of random pairs (lower: more varied)"),
)
VERDICT_TEXT = {"collapsed": "Mode collapse", "low": "Diversity below real data", "ok": "Diversity like real data"}


def _diversity_section(run: RunData) -> str:
    """The latest evaluation's diversity measures beside the same measures on real images, and the verdict."""
    latest = run.latest_diversity
    if latest is None:
        return ""
    verdict, reasons = diversity_verdict(latest.extra)
    rows = []
    for label, key, real_key, meaning in DIVERSITY_ROWS:
        if key in latest.extra:
            rows.append([escape(label), _fmt(latest.extra.get(key), ".3f"), _fmt(latest.extra.get(real_key), ".3f"),
                         escape(meaning)])  # fmt: skip
    table = _table(["measure", "samples", "real images", "meaning"], rows, {1, 2})
    why = "".join(f"<li>{escape(r)}</li>" for r in reasons)
    box = (f'<div class="verdict {verdict}"><b>{escape(VERDICT_TEXT[verdict])}</b> at step {latest.step:,} '
           f"({escape(_source(latest))}, {escape(latest.extractor)} features)"
           + (f"<ul>{why}</ul>" if why else "") + "</div>")  # fmt: skip
    return (f"<section><h2>Diversity</h2>{box}{table}<p class=\"note\">The real column measures one half of the "
            "real images against the other, at the sample count of the generated column: what these numbers look "
            "like for data that is diverse by definition.</p></section>")


def _run_stats(run: RunData) -> str:
    total = run.total_steps
    final, best = run.final_fid, run.best_fid
    stops = sum(1 for e in run.events if e.get("event") == "stopped")
    diverged = sum(1 for e in run.events if e.get("event") == "diverged")
    cards = [
        _stat("step", f"{run.last_step:,}" + (f" / {total:,}" if total else ""),
              f"{100 * run.last_step / total:.0f}% done" if total else ""),
        _stat("final FID", _fid(final.fid if final else None),
              f"step {final.step}, {_source(final)}" if final else "none yet"),
        _stat("best FID", _fid(best.fid if best else None), f"step {best.step}" if best else ""),
        _stat("images/s", _fmt(run.images_per_s, ",.0f"), "last logged, all ranks"),
        _stat("requeues", str(run.requeues), f"{_plural(len(run.starts), 'start')}, {_plural(stops, 'stop')}"),
        _stat("divergences", str(diverged), "rolled back" if diverged else ""),
        _stat("wall time", _span(_duration(run)), "first start to last event"),
    ]  # fmt: skip
    return f'<div class="stats">{"".join(cards)}</div>'


def _samples_section(run: RunData, assets: RunAssets) -> str:
    if not assets.grids:
        return (
            '<section><h2>Samples over training</h2><p class="empty">No sample grids yet (RUN/samples/ is empty; '
            "grids are saved every <code>train.sample_every</code> steps and at the end).</p></section>"
        )
    items: list[tuple[int, int, str]] = []
    for g in assets.grids:
        img = f'<img src="{escape(g.thumb)}" alt="samples at step {g.step}">'
        caption = f"<figcaption>step {g.step:,}</figcaption>"
        items.append((g.step, 0, f'<figure class="grid"><a href="{escape(g.full)}">{img}</a>{caption}</figure>'))
    for m in run.markers:  # events between the grids, where they happened
        items.append((m.step, 1, f'<div class="event {m.kind}"><b>step {m.step:,}</b>{escape(m.label)}</div>'))
    strip = "".join(html for _, _, html in sorted(items, key=lambda i: (i[0], i[1])))
    shown = f"{len(assets.grids)} of {assets.grids_total} grids, evenly spaced" if assets.grids_total > len(
        assets.grids) else f"{assets.grids_total} grid{'s' if assets.grids_total != 1 else ''}"  # fmt: skip
    latest = ""
    if assets.latest:
        g = assets.latest
        pixels = " pixelated" if g.width < LATEST_DISPLAY_PX else ""
        latest = (f'<h3>Latest samples, step {g.step:,}</h3><a href="{escape(g.full)}"><img class="latest{pixels}" '
                  f'src="{escape(g.thumb)}" alt="samples at step {g.step}"></a>'
                  '<p class="note">The fixed latent grid of the EMA generator (G without EMA); classes in fixed '
                  "columns. Click a grid for full size.</p>")  # fmt: skip
    return (f'<section><h2>Samples over training <span class="count">{escape(shown)}</span></h2>'
            f'<div class="strip">{strip}</div>{latest}</section>')  # fmt: skip


def _curves_section(run: RunData, assets: RunAssets) -> str:
    if not run.train and not run.fids:
        return ""
    alts = {"losses": "G and D losses", "accuracy": "D accuracy on real and fake images",
            "fid": "FID and KID over steps", "speed": "images per second", "ada": "ADA probability p"}  # fmt: skip
    cells = []
    for key, alt in alts.items():
        if key in assets.figures:
            cells.append(f'<img src="{escape(assets.figures[key])}" alt="{escape(alt)}">')
        elif key == "fid":
            cells.append('<div class="placeholder"><b>No FID yet.</b> Train with <code>eval.every=N</code> or run '
                         f"<code>hpcgan eval {escape(str(run.path))}</code>.</div>")  # fmt: skip
    legend = ""
    if run.markers:
        legend = ('<p class="note">Vertical lines: <span class="k stopped">stopped</span> (a signal: preemption, '
                  'time limit, requeue), <span class="k restart">restarted</span> (the job again, from its last '
                  'checkpoint), <span class="k diverged">diverged</span> (non-finite loss; the shaded steps were '
                  "rolled back and redone).</p>")  # fmt: skip
    return f'<section><h2>Training curves</h2><div class="plots">{"".join(cells)}</div>{legend}</section>'


def _event_row(e: dict[str, Any], first_start: bool) -> list[str]:
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
    return [escape(_when(e.get("time"))), escape(f"{e.get('step', '–'):,}" if isinstance(e.get("step"), int) else "–"),
            f'<span class="k {css}">{escape(what)}</span>', escape("; ".join(facts))]  # fmt: skip


def _timeline_section(run: RunData) -> str:
    if not run.events:
        return ""
    rows, seen_start = [], False
    for e in run.events:
        rows.append(_event_row(e, first_start=e.get("event") == "start" and not seen_start))
        seen_start |= e.get("event") == "start"
    return f"<section><h2>Timeline</h2>{_table(['time', 'step', 'event', 'details'], rows, {1}, 'events')}</section>"


def _fid_section(run: RunData) -> str:
    if not run.fids:
        return ""
    extras = [k for k in ("precision", "recall", "inception_score", "ms_ssim") if any(k in p.extra for p in run.fids)]
    names = {"precision": "precision", "recall": "recall", "inception_score": "IS", "ms_ssim": "MS-SSIM"}
    rows = []
    for p in run.fids:
        kid = _fmt(p.kid, ".4f") + (f" ± {p.kid_std:.4f}" if p.kid_std is not None else "")
        rows.append([f"{p.step:,}", escape(p.series), _fid(p.fid), kid] + [_fmt(p.extra.get(k)) for k in extras])
    head = ["step", "source (extractor, generated images)", "FID", "KID"] + [names[k] for k in extras]
    numeric = {0, 2, 3, *range(4, 4 + len(extras))}
    note = ""
    if any(p.extractor.startswith("random") for p in run.fids):
        note = ('<p class="note">The <code>random</code> extractor is for tests and smoke runs: its FIDs compare runs '
                "with each other, never with published values.</p>")  # fmt: skip
    return f"<section><h2>FID and KID</h2>{_table(head, rows, numeric, 'fids')}{note}</section>"


def _environment_section(run: RunData, env: Environment) -> str:
    where = [("hosts (rank 0, each start)", ", ".join(env.hosts) or "–"),
             ("world size (ranks)", ", ".join(map(str, env.world_sizes)) or "–"),
             ("job ids", ", ".join(env.job_ids) or "– (not a scheduler job)")]  # fmt: skip
    where += list(env.facts.items())
    left = _table(["where", ""], [[escape(k), escape(v)] for k, v in where], cls="kv")
    right = _table(["software", "version"], [[escape(k), f"<code>{escape(v)}</code>"] for k, v in env.versions.items()],
                   cls="kv")  # fmt: skip
    return (f'<section><h2>Environment</h2><div class="two">{left}<div>{right}'
            f'<p class="note">Versions {escape(env.versions_source)}.</p></div></div></section>')  # fmt: skip


def _config_section(run: RunData) -> str:
    if not run.config:
        queued = "".join(f"<code>{escape(str(o))}</code> " for o in run.job.get("overrides", []))
        queued = f" Its overrides (job.json): {queued}" if queued else ""
        return (f'<section><h2>Configuration</h2><p class="empty">No config.json yet: the job has not started '
                f"training.{queued}</p></section>")  # fmt: skip
    overridden = {str(o).split("=", 1)[0] for o in run.job.get("overrides", []) if "=" in str(o)}
    groups: dict[str, list[tuple[str, Any]]] = {"run": []}
    for key, value in flat_config(run.config).items():
        head, _, rest = key.partition(".")
        groups.setdefault(head if rest else "run", []).append((key, value))
    blocks = []
    for name, items in groups.items():
        if not items:
            continue
        rows = "".join(
            f'<tr class="{"set" if key in overridden else ""}"><td>{escape(key.rsplit(".", 1)[-1])}</td>'
            f"<td><code>{escape(_value(value))}</code></td></tr>" for key, value in items
        )  # fmt: skip
        blocks.append(f'<div class="group"><h3>{escape(name)}</h3><table class="kv">{rows}</table></div>')
    note = ('<p class="note">Bold: set by an override (job.json). Any key works as <code>key=value</code> on the '
            "command line.</p>") if overridden else ""  # fmt: skip
    return f'<section><h2>Configuration</h2><div class="config">{"".join(blocks)}</div>{note}</section>'


def run_page(run: RunData, env: Environment, assets: RunAssets, made: float | None = None) -> str:
    made = made or time.time()
    notice = ""
    if not run.train:
        notice = ('<div class="notice"><b>No metrics yet.</b> This run has not logged a training step '
                  "(<code>metrics.jsonl</code> is missing or empty). The page fills in once it trains: run "
                  "<code>hpcgan report</code> again.</div>")  # fmt: skip
    tb = ""
    if assets.tensorboard:
        tb = (f'<p class="note">TensorBoard scalars: <code>tensorboard --logdir {escape(assets.tensorboard)}</code>'
              "</p>")  # fmt: skip
    body = (_run_header(run, assets, made) + _run_stats(run) + notice + _samples_section(run, assets)
            + _diversity_section(run) + _curves_section(run, assets) + _timeline_section(run) + _fid_section(run)
            + _environment_section(run, env) + _config_section(run) + tb)  # fmt: skip
    return _document(f"{run.name}: hpcgan run report", body)


# -- a sweep --------------------------------------------------------------------------------------

SORT_JS = """
document.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], col = th.cellIndex, numeric = th.dataset.sort === "num";
  const asc = th.getAttribute("aria-sort") !== "ascending";
  th.closest("tr").querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  const key = (row) => { const v = row.cells[col].dataset.value; return v === undefined ? null : numeric ? +v : v; };
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);  // runs without a value last
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
  });
  body.append(...rows);
}));
"""


def _cell(html: str, value: Any = None, numeric: bool = False) -> str:
    """A table cell; `value` (None: no value) is what the header's sort compares."""
    attrs = ' class="num"' if numeric else ""
    if value is not None:
        attrs += f' data-value="{escape(str(value))}"'
    return f"<td{attrs}>{html}</td>"


def _fid_title(p: FidPoint | None) -> str:
    return f"step {p.step}, {p.series}" if p else ""


def sweep_page(name: str, path: str, rows: list[SweepRow], figures: dict[str, str], made: float | None = None) -> str:
    made = made or time.time()
    runs = [r.run for r in rows]
    varying = [k for k in varying_keys(runs) if k != "data" or len({r.config.get("data") for r in runs}) > 1]
    per_column = len(varying) <= 4  # more varied keys go into one "settings" column
    states = Counter(r.state for r in runs)
    finals = [(r.final_fid, r) for r in runs if r.final_fid]
    best = min(finals, key=lambda f: f[0].fid, default=None)
    cards = [
        _stat("runs", str(len(runs)), ", ".join(f"{n} {s}" for s, n in states.most_common())),
        _stat("best final FID", _fid(best[0].fid) if best else "–", best[1].name if best else "none yet"),
        _stat("requeues", str(sum(r.requeues for r in runs)), "all runs"),
        _stat("steps logged", f"{sum(r.last_step for r in runs):,}", "all runs"),
    ]
    head = ['<th aria-label="colour"></th>', "<th>samples</th>", '<th data-sort="text">run</th>']
    if per_column:
        for key in varying:
            numeric = all(number(flat_config(r.config).get(key)) is not None for r in runs if r.config)
            kind = "num" if numeric else "text"
            head.append(f'<th data-sort="{kind}" class="{"num" if kind == "num" else ""}">{escape(key)}</th>')
    elif varying:
        head.append("<th>settings</th>")
    head += ['<th data-sort="text">state</th>', '<th data-sort="num" class="num">step</th>',
             '<th data-sort="num" class="num" id="fid">final FID</th>', '<th data-sort="num" class="num">best FID</th>',
             '<th data-sort="num" class="num">KID</th>', '<th data-sort="num" class="num">images/s</th>',
             '<th data-sort="num" class="num">requeues</th>']  # fmt: skip
    body = []
    for row in rows:
        r, flat = row.run, flat_config(row.run.config)
        thumb = '<span class="empty">–</span>'
        if row.thumb:
            img = f'<img class="thumb" src="{escape(row.thumb)}" alt="last samples of {escape(r.name)}">'
            thumb = f'<a href="{escape(row.report)}">{img}</a>'
        cells = [f'<td><span class="swatch" style="background:{row.color}"></span></td>', f"<td>{thumb}</td>",
                 _cell(f'<a href="{escape(row.report)}">{escape(r.name)}</a>', r.name)]  # fmt: skip
        if per_column:
            for key in varying:
                v = flat.get(key)
                cells.append(_cell(escape(json.dumps(v)) if key in flat else "–", v if key in flat else None,
                                   numeric=number(v) is not None))  # fmt: skip
        elif varying:
            cells.append(_cell("<br>".join(f"<code>{escape(k)}={escape(json.dumps(flat.get(k)))}</code>"
                                           for k in varying)))  # fmt: skip
        final, best_point = r.final_fid, r.best_fid
        total = f" / {r.total_steps:,}" if r.total_steps else ""
        cells += [
            _cell(_badge(r.state), r.state),
            _cell(f"{r.last_step:,}{total}", r.last_step, numeric=True),
            _cell(f'<span title="{escape(_fid_title(final))}">{_fid(final.fid if final else None)}</span>',
                  final.fid if final else None, numeric=True),
            _cell(_fid(best_point.fid if best_point else None), best_point.fid if best_point else None, numeric=True),
            _cell(_fmt(final.kid if final else None, ".4f"), final.kid if final else None, numeric=True),
            _cell(_fmt(r.images_per_s, ",.0f"), r.images_per_s, numeric=True),
            _cell(str(r.requeues), r.requeues, numeric=True),
        ]  # fmt: skip
        body.append(f'<tr data-run="{escape(r.name)}">{"".join(cells)}</tr>')
    series = {f[0].series for f in finals}
    notes = ['Click a column header to sort (again to reverse); runs without a value stay last. Final FID: at the '
             "latest evaluated step; best FID: the lowest of the same series."]  # fmt: skip
    if len(series) > 1:
        notes.append("<b>The final FIDs come from different series</b> (" + "; ".join(escape(s) for s in sorted(series))
                     + "): only FIDs of one extractor and sample count compare.")  # fmt: skip
    table = (f'<table class="runs"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table>'
             + "".join(f'<p class="note">{n}</p>' for n in notes))  # fmt: skip
    plots = "".join(f'<img src="{escape(href)}" alt="{escape(key)} of every run">' for key, href in figures.items())
    curves = f'<section><h2>Curves, all runs</h2><div class="wide">{plots}</div></section>' if plots else ""
    header = (f'<header><h1>{escape(name)} <span class="count">sweep</span></h1>'
              f'<div class="path">{escape(path)} · report made {escape(_when(made))}</div></header>')  # fmt: skip
    body_html = (header + f'<div class="stats">{"".join(cards)}</div>'
                 + f'<section><h2>Runs</h2><div class="scroll">{table}</div></section>' + curves)  # fmt: skip
    return _document(f"{name}: hpcgan sweep report", body_html, SORT_JS)


CSS = """
:root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --card: #fff; --accent: #1d4ed8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 22px 28px 48px; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
header h1 { font-size: 23px; margin: 0 0 2px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
header nav { font-size: 13px; margin-bottom: 6px; }
.sub { color: #374151; }
.path { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
code, .path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { font-size: 12px; background: #f3f4f6; padding: 0 4px; border-radius: 3px; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; margin: 16px 0; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 9px 12px; }
.stat .k { color: var(--muted); font-size: 12px; }
.stat .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat .s { color: var(--muted); font-size: 11.5px; overflow-wrap: anywhere; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px 16px;
  margin: 16px 0; }
section h2 { font-size: 16px; margin: 0 0 12px; }
section h3 { font-size: 13.5px; margin: 16px 0 8px; }
.count { color: var(--muted); font-weight: 400; font-size: 13px; margin-left: 6px; }
.note { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
.empty { color: var(--muted); }
.notice { background: #fffbeb; border: 1px solid #fcd34d; border-radius: 8px; padding: 10px 14px; margin: 16px 0; }
.badge { font-size: 12px; font-weight: 600; padding: 2px 9px; border-radius: 999px; background: #f3f4f6;
  color: #4b5563; white-space: nowrap; }
.badge.collapsed { background: #fee2e2; color: #991b1b; }
.verdict { border-radius: 8px; padding: 10px 14px; margin: 8px 0 12px; border: 1px solid; }
.verdict.collapsed { background: #fef2f2; border-color: #fca5a5; color: #991b1b; }
.verdict.low { background: #fffbeb; border-color: #fcd34d; color: #92400e; }
.verdict.ok { background: #f0fdf4; border-color: #86efac; color: #166534; }
.verdict ul { margin: 6px 0 0 18px; padding: 0; }
.badge.completed { background: #dcfce7; color: #166534; } .badge.running { background: #dbeafe; color: #1e40af; }
.badge.stopped { background: #fef3c7; color: #92400e; } .badge.pending { background: #ede9fe; color: #5b21b6; }
.strip { display: flex; flex-wrap: wrap; gap: 14px 12px; padding: 2px 0 4px; align-items: flex-start; }
figure.grid { margin: 0; flex: 0 0 auto; }
figure.grid img { width: 150px; display: block; border: 1px solid var(--line); border-radius: 4px;
  background: #000; }
figure.grid figcaption { text-align: center; font-size: 12px; color: var(--muted); margin-top: 3px;
  font-variant-numeric: tabular-nums; }
.event { flex: 0 0 auto; align-self: stretch; width: 104px; font-size: 11.5px; line-height: 1.35; padding: 8px;
  border-left: 3px solid; border-radius: 4px; display: flex; flex-direction: column; justify-content: center;
  gap: 2px; }
.event.stopped { border-color: #d97706; background: #fffbeb; }
.event.restart { border-color: #7c3aed; background: #f5f3ff; }
.event.diverged { border-color: #dc2626; background: #fef2f2; }
img.latest { width: min(100%, 520px); display: block; border-radius: 4px; }
img.pixelated { image-rendering: pixelated; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.plots img, .wide img { width: 100%; display: block; }
.wide { display: grid; gap: 14px; } .wide img { max-width: 980px; }
.placeholder { border: 1px dashed #d1d5db; border-radius: 8px; display: flex; align-items: center;
  justify-content: center; text-align: center; padding: 24px; color: var(--muted); min-height: 180px; }
@media (max-width: 860px) { .plots { grid-template-columns: 1fr; } }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 12px; color: #4b5563; font-weight: 600; background: #fafafa; white-space: nowrap; }
.num { text-align: right; }
th[data-sort] { cursor: pointer; user-select: none; } th[data-sort]:hover { color: var(--fg); background: #f3f4f6; }
th[data-sort]::after { content: " ↕"; color: #cbd5e1; }
th[aria-sort=ascending]::after { content: " ▲"; color: var(--accent); }
th[aria-sort=descending]::after { content: " ▼"; color: var(--accent); }
tbody tr:hover { background: #fafafa; }
.k.stopped { color: #b45309; font-weight: 600; } .k.restart { color: #6d28d9; font-weight: 600; }
.k.diverged { color: #b91c1c; font-weight: 600; } .k.completed { color: #15803d; font-weight: 600; }
table.kv td { padding: 3px 10px 3px 0; border: 0; } table.kv td:first-child { color: #4b5563; white-space: nowrap; }
table.kv th { background: none; padding-left: 0; }
table.kv tr.set td { font-weight: 600; color: var(--fg); }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 28px; align-items: start; }
.config { columns: 3 250px; column-gap: 28px; }
.config .group { break-inside: avoid; margin-bottom: 10px; }
.config h3 { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.scroll { overflow-x: auto; }
img.thumb { height: 64px; display: block; border-radius: 3px; background: #000; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 50%; }
"""
