"""What build.py prepared for a run's page: images written beside it (as hrefs relative to the
page), the shard set read for the data section, and links to the run's own files."""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcgan.report.dataset import DataSet, RealImages
from hpcgan.report.parts import Grid, Link


@dataclass
class RunAssets:
    figures: dict[str, str] = field(default_factory=dict)  # losses, accuracy, fid, speed, ada
    grids: list[Grid] = field(default_factory=list)  # the timeline's
    grids_total: int = 0
    unreadable: list[str] = field(default_factory=list)  # sample grids that could not be read
    latest: Grid | None = None  # the last grid, larger
    columns: int = 8  # of the sample grids, for the caption's class columns
    data: DataSet | None = None
    data_problem: str | None = None  # one line when the shard set can't be read
    real: Grid | None = None  # real training images, laid out like the samples
    real_images: RealImages | None = None
    files: list[Link] = field(default_factory=list)  # config.json and the logs
    checkpoints: list[Link] = field(default_factory=list)
    up: Link | None = None  # the sweep page this run belongs to
    tensorboard: str | None = None
