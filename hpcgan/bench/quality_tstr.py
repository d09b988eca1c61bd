"""Train on synthetic, test on real, for every arm of the quality benchmark at once: the classifier
trained on real images is the same for every arm (same seeds, same images), so it is trained once;
each arm adds one trained on its synthetic images and one on real + synthetic, paired by seed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hpcgan.data.index import ShardSet
from hpcgan.data.read_split import read_split, resize_uint8
from hpcgan.eval.classification_scores import METRICS, classification_scores, mean_and_ci
from hpcgan.eval.classifier import ClassifierOptions, predict, train_classifier
from hpcgan.runs.records import read_run_config
from hpcgan.trained.generator import load_generator
from hpcgan.trained.synthetic_draws import synthetic_set

CLASSIFIER_SIZE = 64  # px, as `hpcgan tstr`


def tstr_all(runs: dict[str, Path], seeds: int, steps: int, progress: Callable[[int, int], None]) -> dict[str, Any]:
    """{"real": scores, "n_test": N, "arms": {key: {"synthetic", "real+synthetic", "vs_real", "gain"}}}:
    each a mean ± 95% interval per metric; vs_real = synthetic - real, gain = real+synthetic - real."""
    gens = {key: load_generator(run, "cpu") for key, run in runs.items()}
    data = read_run_config(next(iter(gens.values())).run_dir)["data"]
    shard_set = ShardSet.open(data)
    classes = shard_set.classes
    test_images, test_labels = read_split(shard_set, "test", size=CLASSIFIER_SIZE)
    real = read_split(shard_set, "train", size=CLASSIFIER_SIZE)
    counts = torch.bincount(real[1], minlength=len(classes)).tolist()  # as many as real, in its class mix
    options = ClassifierOptions(CLASSIFIER_SIZE, 16, steps, 64)
    total, done = seeds * (1 + 2 * len(gens)) * steps, 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    def score(images: torch.Tensor, labels: torch.Tensor, seed: int) -> dict[str, Any]:
        model = train_classifier(images, labels, len(classes), options, seed, advance)
        return classification_scores(predict(model, test_images, CLASSIFIER_SIZE), test_labels, len(classes))

    runs_by_arm: dict[str, list[dict[str, Any]]] = {"real": []}
    for seed in range(seeds):
        runs_by_arm["real"].append(score(*real, seed))
        for key, gen in gens.items():
            fake_images, fake_labels = synthetic_set(gen, counts, seed)
            fake = resize_uint8(fake_images, CLASSIFIER_SIZE), fake_labels
            runs_by_arm.setdefault(f"{key}/synthetic", []).append(score(*fake, seed))
            both = torch.cat([real[0], fake[0]]), torch.cat([real[1], fake[1]])
            runs_by_arm.setdefault(f"{key}/real+synthetic", []).append(score(*both, seed))

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {m: mean_and_ci([r[m] for r in rows]) for m in METRICS}

    def paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
        return {m: mean_and_ci([y[m] - x[m] for x, y in zip(a, b, strict=True)]) for m in METRICS}

    base = runs_by_arm["real"]
    arms = {key: {"synthetic": summary(runs_by_arm[f"{key}/synthetic"]),
                  "real+synthetic": summary(runs_by_arm[f"{key}/real+synthetic"]),
                  "vs_real": paired(base, runs_by_arm[f"{key}/synthetic"]),
                  "gain": paired(base, runs_by_arm[f"{key}/real+synthetic"])} for key in gens}  # fmt: skip
    return {"real": summary(base), "n_test": len(test_labels), "n_real_train": len(real[1]), "arms": arms}
