"""Train on synthetic, test on real, for one trained conditional run (`hpcgan tstr`): the run, its
shard set and the held-out test set are loaded and checked here, the classifier arms compared by
hpcgan/eval/tstr.py, and the result written to RUN/tstr/<mode>-step<N>-<test set>-<split>.json.

The synthetic images are those `hpcgan sample --seed SEED` exports (hpcgan/trained/export.py), one
draw per classifier seed, in the real training set's class mix. A multi-label run's are drawn with
label sets from its training distribution, and its classifier has one sigmoid output per finding
(No Finding excluded), scored by ROC AUC per finding and macro AUC (compare_findings)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from hpcgan.atomic import write_json
from hpcgan.data.index import ShardSet
from hpcgan.data.read_split import read_split, resize_uint8
from hpcgan.errors import UserError
from hpcgan.eval.classifier import ClassifierOptions
from hpcgan.eval.memorization import Phase
from hpcgan.eval.tstr import MODES, compare, compare_findings
from hpcgan.runs.records import read_run_config
from hpcgan.trained.generator import LoadedGenerator, load_generator
from hpcgan.trained.synthetic_draws import synthetic_label_sets, synthetic_set

RESULTS = "tstr"  # RUN/tstr/


@dataclass(frozen=True)
class TstrOptions:
    mode: str = "tstr"  # a key of MODES
    test: Path | None = None  # held-out real shard set (None: the run's own)
    test_split: str | None = None  # None: test if the set has one, else val
    n: int | None = None  # synthetic images (None: as many as real training images)
    seeds: int = 3
    steps: int = 500
    size: int = 64
    width: int = 16
    batch_size: int = 64


def check_options(o: TstrOptions) -> None:
    """The checks that need no checkpoint, each naming its flag."""
    if o.mode not in MODES:
        raise UserError(f"--mode {o.mode}: expected one of {', '.join(MODES)}")
    for name in ("seeds", "steps", "size", "width", "batch_size"):
        if getattr(o, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(o, name)}: expected at least 1")
    if o.n is not None and o.n < 1:
        raise UserError(f"--n {o.n}: expected at least 1 synthetic image")


def run_tstr(run: Path, o: TstrOptions, phase: Phase | None = None) -> tuple[dict[str, Any], Path]:
    """(result, the file it was written to) for RUN (a run dir or a checkpoint inside one)."""
    check_options(o)
    gen = load_generator(run, "cpu")
    if not gen.conditional:
        raise UserError(f"RUN {run}: an unconditional run; tstr needs labelled synthetic images from a conditional "
                        "one (cgan64, acgan256, or model.conditional=projection|aux)")  # fmt: skip
    try:
        data = read_run_config(gen.run_dir)["data"]
    except UserError as exc:
        raise UserError(f"RUN {run}: no readable config.json with the run's data; {exc}") from None
    real_set, test_set = ShardSet.open(data), ShardSet.open(o.test or data)
    split = o.test_split or ("test" if "test" in test_set.splits else "val")
    if split not in test_set.splits or (o.test is None and split == "train"):
        raise UserError(f"{test_set.root}: no held-out split ({split!r}); pass --test SHARDS [--test-split NAME]")
    classes = gen.run_classes
    if sorted(test_set.classes) != sorted(classes):
        raise UserError(f"--test {test_set.root}: classes {test_set.classes}, expected the run's {classes}")
    if test_set.multi_label != gen.multi_label:
        kind = ("multi-label (label sets)", "single-label") if gen.multi_label else ("single-label", "multi-label")
        raise UserError(f"--test {test_set.root}: a {kind[1]} shard set; this run is {kind[0]}, test it on a "
                        f"{kind[0]} set with its classes")  # fmt: skip
    phase = phase or (lambda _description, _total: nullcontext(None))
    if gen.multi_label:
        result = _findings_tstr(gen, real_set, test_set, split, o, phase)
        return result, _write(gen, o, test_set, split, result)
    # Everything is read at the classifier's size: a 512 px set costs memory only at --size.
    test_images, test_labels = read_split(test_set, split, size=o.size)
    # The test set's label numbers -> the run's, by class name.
    test_labels = torch.tensor([classes.index(c) for c in test_set.classes])[test_labels]
    real = read_split(real_set, "train", size=o.size)
    n_synthetic = o.n or len(real[1])
    proportions = torch.bincount(real[1], minlength=len(classes)).double() / len(real[1])
    counts = (proportions * n_synthetic).round().long().tolist()

    def synthetic(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = synthetic_set(gen, counts, seed)
        return resize_uint8(images, o.size), labels

    arms = _arms(o.mode, real, synthetic)
    options = ClassifierOptions(o.size, o.width, o.steps, o.batch_size)
    seeds = list(range(o.seeds))
    with phase(f"tstr {o.mode}: {len(arms)} arms x {len(seeds)} seeds", len(seeds) * len(arms) * o.steps) as advance:
        result = compare(arms, (test_images, test_labels), len(classes), seeds, options, advance)
    result.update(
        mode=o.mode, checkpoint=str(gen.checkpoint), step=gen.step, classes=classes,
        test=f"{test_set.root}:{split}", n_test=len(test_labels), n_real_train=len(real[1]),
        n_synthetic=n_synthetic, classifier=asdict(options),
    )  # fmt: skip
    return result, _write(gen, o, test_set, split, result)


Labelled = tuple[torch.Tensor, torch.Tensor]  # (images, labels)


def _arms(mode: str, real: Labelled, synthetic: Callable[[int], Labelled]) -> dict[str, Callable[[int], Labelled]]:
    """The training sets `mode` compares, each a function of the classifier's seed."""

    def real_plus_synthetic(seed: int) -> Labelled:
        fake = synthetic(seed)
        return torch.cat([real[0], fake[0]]), torch.cat([real[1], fake[1]])

    arm_sets = {"real": lambda seed: real, "synthetic": synthetic, "real+synthetic": real_plus_synthetic}
    return {name: arm_sets[name] for name in MODES[mode]}


def _write(gen: LoadedGenerator, o: TstrOptions, test_set: ShardSet, split: str, result: dict[str, Any]) -> Path:
    # Named by what it measured: another checkpoint or test set never overwrites an earlier result.
    out = gen.run_dir / RESULTS / f"{o.mode}-step{gen.step:07d}-{test_set.root.name}-{split}.json"
    out.parent.mkdir(exist_ok=True)
    write_json(out, result)
    return out


def _findings_tstr(gen: LoadedGenerator, real_set: ShardSet, test_set: ShardSet, split: str, o: TstrOptions,
                   phase: Phase) -> dict[str, Any]:  # fmt: skip
    """tstr/augment of a multi-label run: targets are the findings' columns of the multi-hot label
    sets (the No Finding column is the absence of all of them, no output of its own)."""
    classes = gen.run_classes
    findings = classes[:-1]

    def targets(shard_set: ShardSet, hot: torch.Tensor) -> torch.Tensor:
        # The set's columns -> the run's finding order, by name.
        return hot[:, [shard_set.classes.index(f) for f in findings]]

    if sorted(real_set.classes) != sorted(classes):
        raise UserError(f"{real_set.root}: classes {real_set.classes} now, the run was trained on {classes}")
    test_images, test_hot = read_split(test_set, split, size=o.size)
    test = (test_images, targets(test_set, test_hot))
    real_images, real_hot = read_split(real_set, "train", size=o.size)
    real = (real_images, targets(real_set, real_hot))
    n_synthetic = o.n or len(real_images)

    def synthetic(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, hot = synthetic_label_sets(gen, n_synthetic, seed)  # label sets as the training data has them
        return resize_uint8(images, o.size), hot[:, :-1]

    arms = _arms(o.mode, real, synthetic)
    options = ClassifierOptions(o.size, o.width, o.steps, o.batch_size)
    seeds = list(range(o.seeds))
    with phase(f"tstr {o.mode}: {len(arms)} arms x {len(seeds)} seeds", len(seeds) * len(arms) * o.steps) as advance:
        result = compare_findings(arms, test, findings, seeds, options, advance)
    result.update(
        mode=o.mode, label_mode="multi", checkpoint=str(gen.checkpoint), step=gen.step, classes=classes,
        findings=findings, test=f"{test_set.root}:{split}", n_test=len(test_images), n_real_train=len(real_images),
        n_synthetic=n_synthetic, classifier=asdict(options),
    )  # fmt: skip
    return result
