"""A run's synthetic images in memory (for tstr and the quality benchmark): the same images
`hpcgan sample` writes for the same counts and seed (hpcgan/trained/export.py)."""

from __future__ import annotations

import torch

from hpcgan.trained.export_plan import plan_label_sets
from hpcgan.trained.generator import LoadedGenerator


def synthetic_set(
    gen: LoadedGenerator, counts: list[int], seed: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 1, S, S], int64 labels [N]) with counts[c] images of class c, in memory:
    the same images `hpcgan sample --seed SEED` writes for those counts."""
    sampler = gen.sampler(seed)
    images = [sampler.of_class(label, ks) for label, count in enumerate(counts)
              for ks in torch.arange(count).split(batch_size)]  # fmt: skip
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    empty = torch.empty((0, 1, gen.resolution, gen.resolution), dtype=torch.uint8)
    return (torch.cat(images) if images else empty), labels.long()


def synthetic_label_sets(
    gen: LoadedGenerator, n: int, seed: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [n, 1, S, S], float multi-hot label sets [n, C]) of a multi-label run, in memory:
    the images `hpcgan sample --n n --seed SEED` exports (label sets from the training distribution)."""
    plan = plan_label_sets(gen.label_sets, n, seed=seed)
    sampler = gen.sampler(seed)
    images, names = [], []
    for name, count in plan.counts.items():
        images += [sampler.of_set(name, ks) for ks in torch.arange(count).split(batch_size)]
        names += [name] * count
    return torch.cat(images), gen.label_sets.hot_tensor(names)
