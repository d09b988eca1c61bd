"""The "Data and files" section of a run's page: what the run trains on (image counts per split,
the class mix) and links to its config, logs and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcgan.report.assets import RunAssets
from hpcgan.report.parts import Link
from hpcgan.report.text import plural


@dataclass(frozen=True)
class ClassShare:
    name: str
    images: str  # formatted count, "–" when the index has no histogram
    share: str  # "53%"
    bar: str  # CSS width of the bar, "53.1%"


@dataclass
class DataView:
    facts: list[tuple[str, str]] = field(default_factory=list)
    classes: list[ClassShare] = field(default_factory=list)
    split: str = "train"  # whose class mix
    problem: str = ""  # one line when the shard set can't be read
    files: list[Link] = field(default_factory=list)
    checkpoints: list[Link] = field(default_factory=list)
    no_checkpoints: str = ""


def data_view(assets: RunAssets) -> DataView:
    view = DataView(files=assets.files, checkpoints=assets.checkpoints)
    if not assets.checkpoints:
        view.no_checkpoints = "No checkpoints yet (RUN/checkpoints/ holds none)."
    data = assets.data
    if data is None:
        view.problem = assets.data_problem or "The shard set is not known."
        return view
    total = sum(s.images for s in data.splits)
    splits = ", ".join(f"{s.name} {s.images:,} in {plural(s.shards, 'shard')}" for s in data.splits)
    view.facts = [("shard set", str(data.root)), ("images", f"{total:,} ({splits})"),
                  ("image size", f"{data.image_size} px, stored as {data.extension}"),
                  ("classes", str(len(data.classes)))]  # fmt: skip
    if data.source:
        view.facts.append(("made from", data.source))
    if data.skipped:
        view.facts.append(("skipped when sharding", f"{plural(data.skipped, 'source file')} (see skipped.csv)"))
    view.split = data.train_split
    counted = sum(data.histogram.get(c, 0) for c in data.classes)
    for name in data.classes:
        n = data.histogram.get(name)
        percent = 100 * n / counted if n is not None and counted else 0.0
        view.classes.append(ClassShare(name, f"{n:,}" if n is not None else "–",
                                       f"{percent:.0f}%" if n is not None and counted else "–", f"{percent:.1f}%"))
    return view
