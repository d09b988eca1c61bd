"""Everything a run's page shows, decided here and laid out by templates/run.html: the header,
the stat cards, the notices (no metrics yet, D has won), the curves, and the sections of
samples_view, data_view and run_sections."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hpcgan.eval.collapse import COLLAPSED, diversity_verdict
from hpcgan.report import run_sections
from hpcgan.report.assets import RunAssets
from hpcgan.report.checks import d_winning
from hpcgan.report.collect import RunData, number
from hpcgan.report.data_view import DataView, data_view
from hpcgan.report.environment import Environment
from hpcgan.report.parts import Badge, Header, Notice, Stat, state_badge
from hpcgan.report.samples_view import SamplesView, samples_view
from hpcgan.report.text import Rich, bold, code, fid, fmt, kind, plural, rich, source, span, when

PLOTS = {  # figure key -> alt text, in page order
    "losses": "G and D losses",
    "accuracy": "D accuracy on real and fake images",
    "fid": "FID and KID over steps",
    "speed": "images per second",
    "ada": "ADA probability p",
}


@dataclass(frozen=True)
class Plot:
    href: str  # "" when the figure is missing and `placeholder` says why
    alt: str
    placeholder: Rich = ()


@dataclass(frozen=True)
class Curves:
    plots: list[Plot]
    legend: Rich  # what the vertical lines mean, when there are any


@dataclass(frozen=True)
class RunView:
    title: str
    header: Header
    stats: list[Stat]
    notices: list[Notice]
    samples: SamplesView
    data: DataView
    diversity: run_sections.Diversity | None
    curves: Curves | None
    timeline: list[run_sections.EventRow]
    fids: run_sections.Fids | None
    environment: run_sections.EnvironmentView
    config: run_sections.ConfigView
    tensorboard: Rich


def run_view(run: RunData, env: Environment, assets: RunAssets, made: float | None = None) -> RunView:
    return RunView(
        title=f"{run.name}: hpcgan run report",
        header=header(run, assets, made or time.time()),
        stats=stats(run),
        notices=notices(run),
        samples=samples_view(run, assets),
        data=data_view(assets),
        diversity=run_sections.diversity(run),
        curves=curves(run, assets),
        timeline=run_sections.timeline(run),
        fids=run_sections.fid_table(run),
        environment=run_sections.environment(env),
        config=run_sections.configuration(run),
        tensorboard=rich("TensorBoard scalars: ", code(f"tensorboard --logdir {assets.tensorboard}"))
        if assets.tensorboard else (),
    )


def header(run: RunData, assets: RunAssets, made: float) -> Header:
    c = run.config
    model = c.get("model") if isinstance(c.get("model"), dict) else {}
    what = [c.get("gan"), f"{model['resolution']} px" if "resolution" in model else None,
            f"seed {c['seed']}" if "seed" in c else None]  # fmt: skip
    updated = f"last written {when(run.updated)}" if run.updated else "nothing written yet"
    badges = [state_badge(run.state)]
    latest = run.latest_diversity
    if latest is not None and diversity_verdict(latest.extra)[0] == COLLAPSED:
        badges.append(Badge("mode collapse", "collapsed"))  # a completed run that draws one image must not look green
    return Header(run.name, badges, sub=" · ".join(str(w) for w in what if w),
                  path=f"{run.path} · {updated} · report made {when(made)}", up=assets.up)  # fmt: skip


def _duration(run: RunData) -> float | None:
    times = [t for t in (number(e.get("time")) for e in run.events) if t is not None]
    return max(times) - min(times) if len(times) > 1 else None


def stats(run: RunData) -> list[Stat]:
    total = run.total_steps
    final, best = run.final_fid, run.best_fid
    stops = sum(1 for e in run.events if e.get("event") == "stopped")
    diverged = sum(1 for e in run.events if e.get("event") == "diverged")
    return [
        Stat("step", f"{run.last_step:,}" + (f" / {total:,}" if total else ""),
             f"{100 * run.last_step / total:.0f}% done" if total else ""),
        Stat("final FID", fid(final.fid if final else None),
             f"step {final.step}, {source(final)}" if final else "none yet"),
        Stat("best FID", fid(best.fid if best else None), f"step {best.step}" if best else ""),
        Stat("images/s", fmt(run.images_per_s, ",.0f"), "last logged, all ranks"),
        Stat("requeues", str(run.requeues), f"{plural(len(run.starts), 'start')}, {plural(stops, 'stop')}"),
        Stat("divergences", str(diverged), "rolled back" if diverged else ""),
        Stat("wall time", span(_duration(run)), "first start to last event"),
    ]  # fmt: skip


def notices(run: RunData) -> list[Notice]:
    out = []
    if not run.train:
        out.append(Notice(rich(bold("No metrics yet."), " This run has not logged a training step (",
                               code("metrics.jsonl"), " is missing or empty). The page fills in once it trains: run ",
                               code("hpcgan report"), " again.")))  # fmt: skip
    won = d_winning(run)
    if won is not None:
        lowest = min(won.real, won.fake)
        accuracy = "1.00" if lowest >= 0.995 else f"at least {lowest:.2f}"
        out.append(Notice(rich(
            bold("D is winning."), f" Over the last {won.steps} logged steps ({won.first:,} to {won.last:,}) the "
            f"discriminator told every real image from every generated one (accuracy {accuracy} on both). When D "
            "is this sure, G gets no useful gradient from it "
            "and its samples stop improving. What usually helps: a lower D learning rate (", code("optim.lr_d"),
            "), adaptive augmentation (", code("train.ada=true"), ") or a gradient penalty on D (",
            code("loss.r1_gamma"), ")."), "verdict low"))  # fmt: skip
    return out


def curves(run: RunData, assets: RunAssets) -> Curves | None:
    if not run.train and not run.fids:
        return None
    plots = []
    for key, alt in PLOTS.items():
        if key in assets.figures:
            plots.append(Plot(assets.figures[key], alt))
        elif key == "fid":
            plots.append(Plot("", alt, rich(bold("No FID yet."), " Train with ", code("eval.every=N"), " or run ",
                                            code(f"hpcgan eval {run.path}"), ".")))  # fmt: skip
    legend: Rich = ()
    if run.markers:
        legend = rich("Vertical lines: ", kind("stopped", "stopped"), " (a signal: preemption, time limit, requeue), ",
                      kind("restarted", "restart"), " (the job again, from its last checkpoint), ",
                      kind("diverged", "diverged"), " (non-finite loss; the shaded steps were rolled back and redone).")
    return Curves(plots, legend)
