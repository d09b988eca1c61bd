"""Scores of a classifier on a held-out set (torchmetrics), and confidence intervals over seeds."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torchmetrics.functional import classification as tmc

METRICS = ("accuracy", "f1", "precision", "recall", "auc")
NO_POSITIVE, NO_NEGATIVE = "none of the test images has it", "all of the test images have it"


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


def undefined_findings(targets: torch.Tensor, findings: list[str]) -> dict[str, str]:
    """Findings whose ROC AUC is undefined on these multi-hot `targets` [N, F], with the reason."""
    positives = targets.sum(dim=0)
    return {f: NO_POSITIVE if p == 0 else NO_NEGATIVE
            for f, p in zip(findings, positives.tolist(), strict=True) if p == 0 or p == len(targets)}  # fmt: skip


def finding_scores(probs: torch.Tensor, targets: torch.Tensor, findings: list[str]) -> dict[str, Any]:
    """ROC AUC per finding of multi-label predictions (`probs`, `targets`: [N, F], one column per
    finding; torchmetrics' multilabel AUROC) and their macro mean. A finding whose test images are
    all positive or all negative has no AUC (None), and the macro mean leaves it out (None if no
    finding has one)."""
    undefined = undefined_findings(targets, findings)
    with warnings.catch_warnings():  # torchmetrics warns about exactly the columns set to None below
        warnings.simplefilter("ignore")
        per = tmc.multilabel_auroc(probs, targets.round().long(), num_labels=len(findings), average=None)
    auc = {f: None if f in undefined else float(v) for f, v in zip(findings, per.tolist(), strict=True)}
    defined = [v for v in auc.values() if v is not None]
    return {"macro_auc": sum(defined) / len(defined) if defined else None, "auc_per_finding": auc}


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
