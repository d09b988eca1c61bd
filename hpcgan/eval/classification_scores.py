"""Scores of a classifier on a held-out set (torchmetrics), and confidence intervals over seeds."""

from __future__ import annotations

import math
from typing import Any

import torch
from torchmetrics.functional import classification as tmc

METRICS = ("accuracy", "f1", "precision", "recall", "auc")


def classification_scores(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """Accuracy, and F1, precision, recall and one-vs-rest AUC macro-averaged over the classes (so
    a minority class counts as much as the majority); per-class recall; the confusion matrix
    (rows: true class, columns: predicted)."""
    common = {"num_classes": num_classes}
    preds = probs.argmax(1)
    return {
        "accuracy": float(tmc.multiclass_accuracy(preds, labels, average="micro", **common)),
        "f1": float(tmc.multiclass_f1_score(preds, labels, average="macro", **common)),
        "precision": float(tmc.multiclass_precision(preds, labels, average="macro", **common)),
        "recall": float(tmc.multiclass_recall(preds, labels, average="macro", **common)),
        "auc": float(tmc.multiclass_auroc(probs, labels, average="macro", **common)),
        "recall_per_class": [float(r) for r in tmc.multiclass_recall(preds, labels, average=None, **common)],
        "confusion": tmc.multiclass_confusion_matrix(preds, labels, **common).tolist(),
    }


def mean_and_ci(values: list[float], level: float = 0.95) -> dict[str, float | None]:
    """Mean and the half-width of the Student-t confidence interval over independent seeds
    (None with a single seed: one run says nothing about the spread)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci": None, "n": n}
    from scipy.stats import t  # the t quantile; the only use of scipy

    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "ci": float(t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n)), "n": n}
