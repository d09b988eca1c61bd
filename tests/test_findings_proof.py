"""The proof that label-set conditioning works (issue: multi-label findings): a conditional GAN trained
for a few minutes on CPU on multi-label phantoms draws each finding when asked, so that a classifier
trained only on its synthetic images detects every finding on real phantoms it never saw. The same
images with their label sets shuffled (what a generator that ignores its condition gives: images
unrelated to their labels) must fail the same test."""

import json

import torch

from hpcgan.data.index import ShardSet
from hpcgan.data.read_split import read_split
from hpcgan.eval.classifier import ClassifierOptions
from hpcgan.eval.tstr import compare_findings
from hpcgan.trained.generator import load_generator
from hpcgan.trained.synthetic_draws import synthetic_label_sets
from tests.conftest import REPO, run_cli

# The run: cgan64 narrowed to width 32, real batches balanced over findings and the fakes' label sets
# balanced too, so that pneumothorax (10% of images) is seen and asked for as often as the others.
RECIPE = ["model.g_width=32", "model.d_width=32", "train.steps=800", "train.balance=findings",
          "train.label_sampling=balanced", "train.sample_every=400", "checkpoint.every=800", "eval.every=800",
          "eval.n=512"]  # fmt: skip
MIN_AUC, MIN_MACRO = 0.6, 0.7  # each finding, and their mean; the shuffled control must miss them


def passes(summary: dict) -> bool:
    per_finding = [v["mean"] for v in summary["auc_per_finding"].values()]
    return min(per_finding) >= MIN_AUC and summary["macro_auc"]["mean"] >= MIN_MACRO


def test_synthetic_images_teach_a_classifier_every_finding_and_shuffled_labels_do_not(tmp_path):
    train_set, test_set = tmp_path / "phantoms", tmp_path / "held-out"
    run_cli("phantom", train_set, "--findings", "--n", "1500", "--size", "64", "--shard-size", "250")
    run_cli("phantom", test_set, "--findings", "--n", "400", "--size", "64", "--seed", "1")  # other patients
    run = tmp_path / "run"
    run_cli("train", "--gan", "cgan64", "--data", train_set, "--run-dir", run, *RECIPE, timeout=1800)

    gen = load_generator(run, "cpu")
    findings = gen.run_classes[:-1]
    images, hot = synthetic_label_sets(gen, 1500, seed=0)
    labels = hot[:, :-1]  # the findings' columns; No Finding is the absence of all
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    test_images, test_hot = read_split(ShardSet.open(test_set), "train")
    arms = {"synthetic": lambda seed: (images, labels), "shuffled labels": lambda seed: (images, shuffled)}
    result = compare_findings(arms, (test_images, test_hot[:, :-1]), findings, [0], ClassifierOptions(steps=300))

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluation = next(r for r in reversed(records) if "diversity" in r)
    record = {arm: result["summary"][arm] for arm in arms} | {
        "diversity": {k: evaluation[k] for k in ("diversity", "recall", "recall_real", "near_duplicates",
                                                   "near_duplicates_real", "fid_per_finding")}}  # fmt: skip
    artifacts = REPO / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "findings-proof.json").write_text(json.dumps(record, indent=1))
    (artifacts / "findings-proof-samples.png").write_bytes((run / "samples" / "step-000800.png").read_bytes())

    assert passes(result["summary"]["synthetic"]), record["synthetic"]
    assert not passes(result["summary"]["shuffled labels"]), record["shuffled labels"]
    assert evaluation["diversity"] != "collapsed", record["diversity"]
