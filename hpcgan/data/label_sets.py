"""Label sets of multi-label shard sets (ChestX-ray14, CheXpert style): one rule for their names,
their multi-hot vectors and how they are drawn, shared by sharding, loading, training and export.

A multi-label set's classes are its findings followed by NO_FINDING. A sample's multi-hot vector
has one column per class; the NO_FINDING column is 1 exactly when no finding is (so the vector is
never all zero, and a single-label set's one-hot vectors are the same thing with one 1 each).
A set is named by its findings in class order joined by '|' ("Cardiomegaly|Effusion"), the empty
set by NO_FINDING.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpcgan.errors import UserError

if TYPE_CHECKING:  # torch loads where tensors are made: index.json readers (status, report) run without it
    import torch

NO_FINDING = "No Finding"
SEPARATOR = "|"
GOLDEN = (math.sqrt(5) - 1) / 2  # evaluation draws: a low-discrepancy walk through the set distribution


def set_name(findings: Iterable[str], classes: Sequence[str]) -> str:
    """The canonical name of a set of findings (class order; NO_FINDING for none)."""
    present = set(findings) - {NO_FINDING}
    ordered = [c for c in classes if c in present]
    return SEPARATOR.join(ordered) or NO_FINDING


def hot_of(findings: Iterable[str], classes: Sequence[str]) -> list[int]:
    """The multi-hot vector (one int per class, NO_FINDING last) of a set of findings."""
    present = set(findings) - {NO_FINDING}
    hot = [int(c in present) for c in classes[:-1]]
    return [*hot, int(not any(hot))]


def findings_of(hot: Sequence[int | float], classes: Sequence[str]) -> list[str]:
    """The findings a multi-hot vector holds (empty for NO_FINDING)."""
    return [c for c, v in zip(classes[:-1], hot[:-1], strict=False) if v]


def encode_hot(hot: Sequence[int]) -> bytes:
    """A `.hot` shard member: one '0'/'1' character per class."""
    return "".join("1" if v else "0" for v in hot).encode()


def decode_hot(data: bytes, num_classes: int) -> int | None:
    """A `.hot` member as a bitmask (bit i = class i), or None when it is not num_classes '0'/'1'
    characters with the NO_FINDING rule kept (the loader then skips the sample as damaged)."""
    text = data.decode("ascii", "replace").strip()
    if len(text) != num_classes or set(text) - {"0", "1"}:
        return None
    if (text[-1] == "1") == ("1" in text[:-1]):
        return None
    return sum(1 << i for i, ch in enumerate(text) if ch == "1")


def masks_to_hot(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Bitmasks [B] -> float multi-hot [B, num_classes]."""
    import torch

    bits = torch.arange(num_classes, device=masks.device)
    return ((masks.unsqueeze(1) >> bits) & 1).float()


def hot_to_masks(hot: torch.Tensor) -> torch.Tensor:
    """Multi-hot [B, C] -> int64 bitmasks [B] (the latent rule's key of a label set)."""
    import torch

    weights = 1 << torch.arange(hot.shape[1], device=hot.device)
    return (hot.round().long() * weights).sum(dim=1)


def class_mask(labels: torch.Tensor, c: int) -> torch.Tensor:
    """Which samples have class c: labels are class indices [B] or multi-hot label sets [B, C]."""
    return labels[:, c] > 0 if labels.is_floating_point() else labels == c


@dataclass(frozen=True)
class LabelSets:
    """The classes of a multi-label set and how often each label set occurs in its training split."""

    classes: tuple[str, ...]
    counts: dict[str, int]  # set name -> training images

    def __post_init__(self) -> None:
        if not self.classes or self.classes[-1] != NO_FINDING:
            raise ValueError(f"multi-label classes end with {NO_FINDING!r}: {self.classes}")

    @property
    def findings(self) -> list[str]:
        return list(self.classes[:-1])

    @property
    def names(self) -> list[str]:
        """The label sets that occur, most common first (ties by name)."""
        return sorted(self.counts, key=lambda name: (-self.counts[name], name))

    def hot(self, name: str) -> list[int]:
        return hot_of(name.split(SEPARATOR), self.classes)

    def hot_tensor(self, names: Sequence[str]) -> torch.Tensor:
        import torch

        return torch.tensor([self.hot(n) for n in names], dtype=torch.float32).reshape(len(names), len(self.classes))

    def finding_counts(self) -> dict[str, int]:
        """Training images per class (an image with two findings counts under both)."""
        totals = dict.fromkeys(self.classes, 0)
        for name, count in self.counts.items():
            for finding in name.split(SEPARATOR):
                totals[finding] += count
        return totals

    def parse(self, text: str, option: str = "--labels", allow_unseen: bool = False) -> str:
        """A user's label set ("Effusion|Cardiomegaly", any order) -> its canonical name; one line
        naming the option when a finding is unknown or the set never occurs in training."""
        parts = [p.strip() for p in text.split(SEPARATOR)]
        if not text.strip() or any(not p for p in parts):
            raise UserError(f"{option} {text!r}: expected findings separated by '|', e.g. "
                            f"{SEPARATOR.join(self.findings[:2]) or NO_FINDING}")  # fmt: skip
        unknown = [p for p in parts if p not in self.classes]
        if unknown:
            raise UserError(f"{option} {text!r}: unknown finding {unknown[0]!r}; this run's findings are "
                            f"{', '.join(self.classes)}")  # fmt: skip
        if NO_FINDING in parts and len(parts) > 1:
            raise UserError(f"{option} {text!r}: {NO_FINDING} cannot be combined with findings")
        name = set_name(parts, self.classes)
        if name not in self.counts and not allow_unseen:
            raise UserError(f"{option} {text!r}: this label set never occurs in the training data; "
                            "pass --allow-unseen to draw it anyway")  # fmt: skip
        return name


    def draw(self, n: int, gen: torch.Generator, device: torch.device | str, balanced: bool = False) -> torch.Tensor:
        """n label sets as multi-hot [n, C] on `device`: from the training distribution, or with
        `balanced` each class equally likely (a class first, then a set holding it, by count)."""
        import torch

        names = self.names
        hot = self.hot_tensor(names).to(device)
        counts = torch.tensor([float(self.counts[n]) for n in names], device=device)
        if not balanced:
            picks = torch.multinomial(counts, n, replacement=True, generator=gen)
            return hot[picks]
        present = hot.sum(dim=0) > 0  # classes that occur at all
        per_class = hot[:, present] * counts.unsqueeze(1)  # [sets, classes present]
        class_pick = torch.randint(0, int(present.sum()), (n,), generator=gen, device=device)
        # Within the chosen class, a set in proportion to its count: Gumbel-free inverse CDF.
        weights = per_class[:, class_pick].T  # [n, sets]
        cdf = weights.cumsum(dim=1) / weights.sum(dim=1, keepdim=True)
        u = torch.rand(n, 1, generator=gen, device=device)
        picks = (cdf < u).sum(dim=1).clamp(max=len(names) - 1)
        return hot[picks]

    def evaluation_names(self, indices: Sequence[int], containing: str | None = None) -> list[str]:
        """The label set of evaluation image i: a fixed walk (i * golden ratio mod 1) through the
        training distribution (of the sets holding class `containing`, when given), so any N
        follows it closely and image i never depends on N."""
        names = [n for n in self.names if containing is None or containing in n.split(SEPARATOR)]
        if not names:
            raise UserError(f"no training image has {containing!r}; it has no generated images to compare")
        total = sum(self.counts[n] for n in names)
        cdf = list(itertools.accumulate(self.counts[n] / total for n in names))
        picked = []
        for i in indices:
            u = (int(i) * GOLDEN) % 1.0
            picked.append(names[next((j for j, c in enumerate(cdf) if u < c), len(names) - 1)])
        return picked

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, data: dict) -> LabelSets:
        return cls(tuple(data["classes"]), {str(k): int(v) for k, v in data["counts"].items()})
