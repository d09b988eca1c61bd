"""`hpcgan tstr` on a multi-label run: a sigmoid classifier (one output per finding, No Finding
none) trained on synthetic label sets and tested on real held-out images, scored by ROC AUC per
finding and macro AUC with intervals over seeds; an undefined AUC is n/a, said plainly."""

import json
from functools import partial

import pytest
import torch

from hpcgan.data.index import ShardSet
from hpcgan.data.phantom import _prepare_phantom
from hpcgan.data.read_split import read_split
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.shard_writer import PlannedSample, write_shard_set
from hpcgan.eval.classification_scores import NO_POSITIVE, finding_scores
from hpcgan.eval.classifier import ClassifierOptions
from hpcgan.eval.tstr import compare_findings
from tests.conftest import assert_one_line_error, run_cli
from tests.trained.test_multi_label_export import CLASSES, findings_shard_set

TINY = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=8", "train.num_workers=0",
        "train.sample_every=0"]  # fmt: skip
FAST = ["--steps", "20", "--size", "32", "--width", "8", "--batch-size", "32"]
FINDINGS = CLASSES[:-1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return findings_shard_set(tmp_path_factory.mktemp("ml-tstr") / "findings", size=32)


@pytest.fixture(scope="module")
def run(data):
    run_dir = data.parent / "ml"
    run_cli("train", "--gan", "cgan64", "--data", data, "--run-dir", run_dir, *TINY, "train.steps=4", threads=1)
    return run_dir


def test_finding_scores_are_per_finding_auc_and_their_macro_mean():
    probs = torch.tensor([[0.9, 0.2, 0.5], [0.8, 0.7, 0.5], [0.1, 0.6, 0.5], [0.3, 0.1, 0.5]])
    targets = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]]).float()
    scores = finding_scores(probs, targets, ["a", "b", "c"])
    assert scores["auc_per_finding"] == {"a": 1.0, "b": 1.0, "c": None}  # c: no positive test image
    assert scores["macro_auc"] == 1.0  # the mean of the findings that have an AUC
    flipped = finding_scores(1 - probs, targets, ["a", "b", "c"])
    assert flipped["auc_per_finding"]["a"] == 0.0 and flipped["macro_auc"] == 0.0


def test_scores_follow_what_the_classifier_was_trained_on(data):
    shard_set = ShardSet.open(data)
    (train_images, train_hot), (test_images, test_hot) = read_split(shard_set, "train"), read_split(shard_set, "val")
    real = (train_images, train_hot[:, :-1])
    swapped = (train_images, real[1].clone())
    swapped[1][:, 0] = 1 - swapped[1][:, 0]  # opacity (the one finding drawn into the phantoms) flipped
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = compare_findings({"real": lambda seed: real, "swapped": lambda seed: swapped},
                                  (test_images, test_hot[:, :-1]), FINDINGS, [0],
                                  ClassifierOptions(size=32, width=8, steps=150, batch_size=32))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    opacity = {arm: result["summary"][arm]["auc_per_finding"]["opacity"]["mean"] for arm in ("real", "swapped")}
    assert opacity["real"] > 0.85 and opacity["swapped"] < 0.2, opacity
    assert result["undefined"] == {"nodule": NO_POSITIVE}
    for r in result["runs"]:
        assert r["auc_per_finding"]["nodule"] is None
        defined = [v for v in r["auc_per_finding"].values() if v is not None]
        assert r["macro_auc"] == pytest.approx(sum(defined) / 3)
    assert result["summary"]["real"]["auc_per_finding"]["nodule"] is None
    assert result["difference"]["of"] == "swapped - real"
    assert result["difference"]["auc_per_finding"]["opacity"]["mean"] == pytest.approx(
        opacity["swapped"] - opacity["real"])  # fmt: skip


def test_tstr_and_augment_on_a_multi_label_run(run, data):
    proc = run_cli("tstr", run, "--seeds", "2", *FAST, threads=1)
    assert "ROC AUC on 64 real images" in proc.stdout and "synthetic - real" in proc.stdout
    assert "nodule: AUC n/a, none of the test images has it (64 images); left out of the macro AUC" in proc.stdout
    result = json.loads((run / "tstr" / "tstr-step0000004-findings-val.json").read_text())
    assert result["label_mode"] == "multi" and result["findings"] == FINDINGS and result["classes"] == CLASSES
    assert [r["arm"] for r in result["runs"]] == ["real", "synthetic"] * 2
    assert {r["n_train"] for r in result["runs"]} == {256}  # synthetic: as many as real
    for r in result["runs"]:
        assert set(r["auc_per_finding"]) == set(FINDINGS) and r["auc_per_finding"]["nodule"] is None
        assert all(0 <= v <= 1 for v in r["auc_per_finding"].values() if v is not None) and 0 <= r["macro_auc"] <= 1
    for arm in ("real", "synthetic"):
        summary = result["summary"][arm]
        assert summary["macro_auc"]["n"] == 2 and summary["macro_auc"]["ci"] is not None
        assert summary["auc_per_finding"]["opacity"]["ci"] is not None and summary["auc_per_finding"]["nodule"] is None
    run_cli("tstr", run, "--mode", "augment", "--seeds", "1", "--n", "40", *FAST, threads=1)
    augment = json.loads((run / "tstr" / "augment-step0000004-findings-val.json").read_text())
    assert [(r["arm"], r["n_train"]) for r in augment["runs"]] == [("real", 256), ("real+synthetic", 296)]
    assert augment["summary"]["real"]["macro_auc"]["ci"] is None  # one seed: no interval


def test_a_test_set_of_other_classes_or_single_label_is_one_line(run, tmp_path):
    plain = tmp_path / "plain"
    run_cli("phantom", plain, "--n", "16", "--size", "32", "--workers", "1", "--val-fraction", "0.5", threads=1)
    assert_one_line_error(run_cli("tstr", run, "--test", plain, check=False), "--test", "classes")
    # The run's classes, but one class per image.
    single = tmp_path / "single"
    options = ShardOptions(size=32, workers=1)
    plan = {"val": [PlannedSample(f"val-{i:07d}", i % 5, CLASSES[i % 5], (0, i, 0)) for i in range(10)]}
    write_shard_set(single, {"source": "test", **options.settings()}, CLASSES, plan,
                    partial(_prepare_phantom, size=32, fmt=options.format), options)  # fmt: skip
    assert_one_line_error(run_cli("tstr", run, "--test", single, check=False), "--test", "a single-label shard set",
                          "this run is multi-label")  # fmt: skip


def _phantom_has_findings() -> bool:
    return "--findings" in run_cli("phantom", "--help").stdout


def test_tstr_and_fill_to_on_phantoms_with_findings(tmp_path):
    """The same on `hpcgan phantom --findings` (findings drawn into the images, overlapping)."""
    if not _phantom_has_findings():
        pytest.skip("hpcgan phantom has no --findings yet")
    data, run_dir = tmp_path / "phantoms", tmp_path / "run"
    run_cli("phantom", data, "--findings", "--n", "320", "--size", "32", "--val-fraction", "0.2", "--workers", "1",
            threads=1)  # fmt: skip
    run_cli("train", "--gan", "cgan64", "--data", data, "--run-dir", run_dir, *TINY, "train.steps=4", threads=1)
    shard_set = ShardSet.open(data)
    findings = shard_set.classes[:-1]
    run_cli("tstr", run_dir, "--seeds", "1", *FAST, threads=1)
    result = json.loads((run_dir / "tstr" / "tstr-step0000004-phantoms-val.json").read_text())
    assert result["findings"] == findings and result["n_test"] == shard_set.count("val")
    for r in result["runs"]:
        assert set(r["auc_per_finding"]) == set(findings) and r["macro_auc"] is not None
    # --fill-to on the same run: every finding (and No Finding) reaches N with the real images.
    top = max(shard_set.train_class_counts()) + 5
    out = tmp_path / "filled"
    run_cli("sample", run_dir, "--fill-to", str(top), "--out", out, "--format", "shards", threads=1)
    generated = ShardSet.open(out).train_class_counts()
    assert all(real + new >= top for real, new in zip(shard_set.train_class_counts(), generated, strict=True))
