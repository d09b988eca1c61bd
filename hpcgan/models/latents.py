"""The one rule for the latents of every draw from a generator: training-time FID, `hpcgan eval`,
sample export, tstr and memorization all go through `LatentSampler`, so one checkpoint's FID is
computed on the same images whichever of them computes it.

Image k of class c has the latent z(seed, c, k): a torch CPU generator seeded from numpy's
SeedSequence([seed, c, k]) draws z_dim standard normals. Nothing else enters, so image k of a class
does not depend on N, the batch size, the world size or the other classes.

An evaluation numbers its images i = 0, 1, ...: image i has class i % C and is image k = i // C of
that class (C: the generator's classes, 1 if it is unconditional). Every C consecutive images hold
one of each class, so any N is as balanced as it can be, and each rank draws its own indices of the
one sequence.

A multi-label generator is conditioned on label sets (multi-hot, hpcgan/data/label_sets.py): the
"class" of the rule is then the set's bitmask (bit i: class i), and evaluation image i is image
k = i of the set LabelSets.evaluation_names gives it, a fixed walk through the training distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hpcgan.data.label_sets import LabelSets, hot_to_masks

EVAL_SEED = 0  # the latent seed of every evaluation: training-time, `hpcgan eval`, memorization
# Recorded by exports next to the seed: an export made with another rule is never resumed by this one.
LATENT_RULE = "z(seed, class, k): torch normal, generator seeded by numpy SeedSequence([seed, class, k])"


def latent_seed(seed: int, label: int, k: int) -> int:
    """The 64-bit seed of image k of class `label` (SeedSequence mixes the three into one stream)."""
    if min(seed, label, k) < 0:
        raise ValueError(f"seed {seed}, class {label}, index {k}: expected non-negative integers")
    return int(np.random.SeedSequence([seed, label, k]).generate_state(1, np.uint64)[0])


def latents(seed: int, labels: torch.Tensor, ks: torch.Tensor, z_dim: int) -> torch.Tensor:
    """float32 [B, z_dim] on the CPU: row j is z(seed, labels[j], ks[j]); multi-hot label sets
    [B, C] are keyed by their bitmask."""
    if labels.is_floating_point():
        labels = hot_to_masks(labels.cpu())
    out = torch.empty(len(ks), z_dim)
    for row, (label, k) in enumerate(zip(labels.tolist(), ks.tolist(), strict=True)):
        generator = torch.Generator().manual_seed(latent_seed(seed, label, k))
        out[row] = torch.randn(z_dim, generator=generator)
    return out


def evaluation_layout(indices: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, k) of evaluation images `indices`: class i % C, image k = i // C of it."""
    return indices % classes, indices // classes


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 (the inverse of the loader's uint8 -> [-1, 1] scaling)."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@dataclass(frozen=True)
class LatentSampler:
    """Images of generator `g` by number. `num_classes` 0: an unconditional generator (one class,
    no labels passed). `label_sets`: a multi-label generator's training label sets (its
    conditioning is then multi-hot). The caller puts `g` in eval mode."""

    g: nn.Module
    z_dim: int
    num_classes: int
    seed: int = 0
    device: torch.device | str = "cpu"
    label_sets: LabelSets | None = None

    @property
    def classes(self) -> int:
        """C of the evaluation layout."""
        return max(self.num_classes, 1)

    @property
    def multi_label(self) -> bool:
        return self.label_sets is not None and self.num_classes > 0

    @torch.no_grad()
    def images(self, labels: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, S, S] on the CPU: image ks[j] of class labels[j] (or of label set labels[j],
        multi-hot, for a multi-label generator)."""
        z = latents(self.seed, labels, ks, self.z_dim).to(self.device)
        conditioning = labels.to(self.device) if self.num_classes else None
        return to_uint8(self.g(z, conditioning)).cpu()

    def at(self, indices: torch.Tensor, containing: str | None = None) -> torch.Tensor:
        """Evaluation images `indices` (see the module docstring). `containing` (multi-label only):
        the label sets are drawn among those that hold this class."""
        if self.multi_label:
            names = self.label_sets.evaluation_names(indices.tolist(), containing)
            return self.images(self.label_sets.hot_tensor(names), indices.long())
        return self.images(*evaluation_layout(indices, self.classes))

    def of_set(self, name: str, ks: torch.Tensor) -> torch.Tensor:
        """Images `ks` of the label set `name` (a multi-label export's image k of that set)."""
        return self.images(self.label_sets.hot_tensor([name] * len(ks)), ks)

    def of_class(self, label: int, ks: torch.Tensor) -> torch.Tensor:
        """Images `ks` of class `label` (an export's image k of that class); for a multi-label
        generator, evaluation images `ks` among the label sets that hold class `label`."""
        if self.multi_label:
            return self.at(ks, containing=self.label_sets.classes[label])
        return self.images(torch.full((len(ks),), label, dtype=torch.long), ks)


def generator_classes(g: nn.Module, num_classes: int) -> int:
    """The classes `g` is conditioned on: `num_classes` (the data's) unless `g` says it has none
    (every generator of hpcgan/models has `num_classes`, 0 when unconditional)."""
    return num_classes if getattr(g, "num_classes", num_classes) else 0
