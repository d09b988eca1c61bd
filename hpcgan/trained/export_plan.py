"""How many images of which class or label set an export draws (`hpcgan sample`): an even split over
classes, or a multi-label export's label set per image (`--labels`, the training distribution,
`--fill-to`). Pure functions of the run's label sets and the options: no generator runs here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpcgan.data.label_sets import SEPARATOR, LabelSets
from hpcgan.errors import UserError

FILL_STREAM = 0x66696C6C  # "fill": the --fill-to draws' own random stream, apart from any latent


def class_counts(n: int, num_classes: int, only: int | None = None) -> list[int]:
    """Images per class: all `n` to class `only`, else `n` split evenly, the remainder to the first classes."""
    if only is not None:
        return [n if i == only else 0 for i in range(num_classes)]
    base, extra = divmod(n, num_classes)
    return [base + (i < extra) for i in range(num_classes)]


@dataclass(frozen=True)
class LabelPlan:
    """A multi-label export's images in order: image i is image ks[i] of label set names[i]."""

    names: list[str]
    ks: list[int]
    added: dict[str, int]  # --fill-to: images appended per class (0 for a class already there); {} without

    @property
    def counts(self) -> dict[str, int]:
        """Images per label set, in order of first appearance."""
        counts: dict[str, int] = {}
        for name in self.names:
            counts[name] = counts.get(name, 0) + 1
        return counts


def plan_label_sets(
    label_sets: LabelSets, n: int | None, labels: list[str] | None = None, fill_to: int | None = None,
    seed: int = 0, allow_unseen: bool = False,
) -> LabelPlan:  # fmt: skip
    """The label set of every image of a multi-label export (see the module docstring): a pure
    function of the run's label sets and the options."""
    names: list[str] = []
    if labels:
        if not n:
            raise UserError(f"--labels {labels[0]}: how many images? pass --n N (split evenly across the sets)")
        sets = list(dict.fromkeys(label_sets.parse(text, "--labels", allow_unseen) for text in labels))
        for name, count in zip(sets, class_counts(n, len(sets)), strict=True):
            names += [name] * count
    elif n:
        names = label_sets.evaluation_names(range(n))
    added: dict[str, int] = {}
    if fill_to is not None:
        real = label_sets.finding_counts()
        for c, cls in enumerate(label_sets.classes):
            added[cls] = short = max(0, fill_to - real[cls])
            if short:
                names += _fill_draws(label_sets, cls, c, short, seed, allow_unseen, fill_to)
        if not names:
            fewest = min(real, key=lambda cls: real[cls])
            raise UserError(f"--fill-to {fill_to}: every finding already has {fill_to} or more training images "
                            f"(fewest: {fewest}, {real[fewest]}); nothing to add")  # fmt: skip
    seen: dict[str, int] = {}
    ks = []
    for name in names:
        ks.append(seen.get(name, 0))
        seen[name] = ks[-1] + 1
    return LabelPlan(names, ks, added)


def _fill_draws(label_sets: LabelSets, cls: str, c: int, short: int, seed: int, allow_unseen: bool,
                fill_to: int) -> list[str]:  # fmt: skip
    """`short` label sets holding class `cls`: the training sets that hold it, in proportion to
    their counts (its co-occurring findings as the data has them), seeded by (seed, class)."""
    holders = [name for name in label_sets.names if cls in name.split(SEPARATOR)]
    if not holders:
        if not allow_unseen:
            raise UserError(
                f"--fill-to {fill_to}: no training image has {cls!r}, so no label set to draw its co-occurring "
                f"findings from; pass --allow-unseen to add images of {cls} alone"
            )
        holders = [cls]
    weights = np.array([float(label_sets.counts.get(name, 1)) for name in holders])
    rng = np.random.default_rng([seed, FILL_STREAM, c])
    return [holders[j] for j in rng.choice(len(holders), size=short, p=weights / weights.sum()).tolist()]
