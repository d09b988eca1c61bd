"""Downstream value of synthetic images: train a classifier on one training set per arm, test it
on the same real held-out images, once per seed, and compare the arms.

- mode `tstr`: train on synthetic (from a conditional generator) vs on real (the baseline), both
  tested on real images: how much of the real data's signal the generator carries.
- mode `augment`: real vs real + synthetic: does adding synthetic images help?

Each seed fixes the classifier's initialisation and batches and the synthetic draw, so the
interval over seeds covers both; the difference between the arms is paired by seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hpcgan.eval.classification_scores import METRICS, classification_scores, mean_and_ci
from hpcgan.eval.classifier import ClassifierOptions, predict, train_classifier

# seed -> (uint8 images [N, 1, S, S], int64 labels [N]): one arm's training set
TrainingSet = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
MODES = {"tstr": ("real", "synthetic"), "augment": ("real", "real+synthetic")}


def compare(
    arms: dict[str, TrainingSet],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    seeds: list[int],
    options: ClassifierOptions,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Scores per (arm, seed), their mean and 95% interval per arm, and the paired difference of
    the last arm minus the first."""
    test_images, test_labels = test
    runs = []
    for seed in seeds:
        for arm, training_set in arms.items():
            images, labels = training_set(seed)
            model = train_classifier(images, labels, num_classes, options, seed, progress)
            scores = classification_scores(predict(model, test_images, options.size), test_labels, num_classes)
            runs.append({"arm": arm, "seed": seed, "n_train": len(labels), **scores})
    by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm in arms}
    summary = {arm: {m: mean_and_ci([r[m] for r in rs]) for m in METRICS} for arm, rs in by_arm.items()}
    first, last = list(arms)[0], list(arms)[-1]
    difference = {
        m: mean_and_ci([b[m] - a[m] for a, b in zip(by_arm[first], by_arm[last], strict=True)]) for m in METRICS
    }
    return {"runs": runs, "summary": summary, "difference": {"of": f"{last} - {first}", **difference}}
