"""Downstream value of synthetic images: train a classifier on one training set per arm, test it
on the same real held-out images, once per seed, and compare the arms.

- mode `tstr`: train on synthetic (from a conditional generator) vs on real (the baseline), both
  tested on real images: how much of the real data's signal the generator carries.
- mode `augment`: real vs real + synthetic: does adding synthetic images help?

Each seed fixes the classifier's initialisation and batches and the synthetic draw, so the
interval over seeds covers both; the difference between the arms is paired by seed.

Multi-label sets (`compare_findings`): one sigmoid output per finding (No Finding is no output: it
is the absence of all of them), scored by ROC AUC per finding and its macro mean over findings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hpcgan.eval.classification_scores import (
    METRICS,
    classification_scores,
    finding_scores,
    mean_and_ci,
    undefined_findings,
)
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


def compare_findings(
    arms: dict[str, TrainingSet],
    test: tuple[torch.Tensor, torch.Tensor],
    findings: list[str],
    seeds: list[int],
    options: ClassifierOptions,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """As `compare` for multi-label sets: each arm's labels and the test labels are float multi-hot
    [N, F] over `findings`. Per (arm, seed): macro AUC and AUC per finding; per arm their mean and
    95% interval over seeds; the paired difference of the last arm minus the first. A finding
    whose AUC is undefined on the test images (none or all of them have it) is None throughout,
    and listed with the reason under "undefined"."""
    test_images, test_targets = test
    runs = []
    for seed in seeds:
        for arm, training_set in arms.items():
            images, targets = training_set(seed)
            model = train_classifier(images, targets, len(findings), options, seed, progress)
            scores = finding_scores(predict(model, test_images, options.size), test_targets, findings)
            runs.append({"arm": arm, "seed": seed, "n_train": len(targets), **scores})
    by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm in arms}
    summary = {arm: _finding_summary(rs, findings) for arm, rs in by_arm.items()}
    first, last = list(arms)[0], list(arms)[-1]
    paired = [_minus(b, a, findings) for a, b in zip(by_arm[first], by_arm[last], strict=True)]
    difference = {"of": f"{last} - {first}", **_finding_summary(paired, findings)}
    return {"runs": runs, "summary": summary, "difference": difference,
            "undefined": undefined_findings(test_targets, findings)}  # fmt: skip


def _finding_summary(runs: list[dict[str, Any]], findings: list[str]) -> dict[str, Any]:
    """Mean and interval over seeds of macro AUC and each finding's AUC (None where undefined)."""

    def stat(values: list[float | None]) -> dict[str, float | None] | None:
        return None if any(v is None for v in values) else mean_and_ci(values)

    return {"macro_auc": stat([r["macro_auc"] for r in runs]),
            "auc_per_finding": {f: stat([r["auc_per_finding"][f] for r in runs]) for f in findings}}  # fmt: skip


def _minus(b: dict[str, Any], a: dict[str, Any], findings: list[str]) -> dict[str, Any]:
    def diff(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else x - y

    per_finding = {f: diff(b["auc_per_finding"][f], a["auc_per_finding"][f]) for f in findings}
    return {"macro_auc": diff(b["macro_auc"], a["macro_auc"]), "auc_per_finding": per_finding}
