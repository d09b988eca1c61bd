"""`hpcgan tstr`: a classifier trained on one set and tested on real held-out images. Its scores
follow the quality of what it was trained on (real images score high, label-swapped copies low),
the intervals are Student-t over seeds, and the CLI runs both modes on a short conditional run."""

import json

import pytest
import torch

from hpcgan.data.index import ShardSet
from hpcgan.data.read_split import read_split
from hpcgan.eval.classification_scores import classification_scores, mean_and_ci
from hpcgan.eval.classifier import ClassifierOptions
from hpcgan.eval.tstr import compare
from tests.conftest import assert_one_line_error, run_cli

TINY = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=16", "train.num_workers=0"]
FAST = ["--steps", "40", "--size", "32", "--width", "8", "--batch-size", "32"]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("tstr")
    shards = root / "ph32"
    run_cli("phantom", shards, "--n", "400", "--size", "32", "--shard-size", "100", "--val-fraction", "0.25")
    return root, shards


@pytest.fixture(scope="module")
def conditional_run(phantoms):
    root, shards = phantoms
    run_cli("train", "--gan", "cgan64", "--data", shards, "--run-dir", root / "cgan", *TINY, "train.steps=20",
            "checkpoint.every=10", threads=1)  # fmt: skip
    return root / "cgan"


def test_scores_follow_what_the_classifier_was_trained_on(phantoms):
    _, shards = phantoms
    shard_set = ShardSet.open(shards)
    real, test = read_split(shard_set, "train"), read_split(shard_set, "val")
    arms = {"real": lambda seed: real, "swapped": lambda seed: (real[0], 1 - real[1])}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # xdist runs two test files at once on 2 cores
    try:
        result = compare(arms, test, 2, [0, 1], ClassifierOptions(size=32, width=8, steps=150, batch_size=32))
    finally:
        torch.set_num_threads(threads)
    assert [(r["arm"], r["seed"]) for r in result["runs"]] == [("real", 0), ("swapped", 0), ("real", 1), ("swapped", 1)]
    real_acc, swapped_acc = result["summary"]["real"]["accuracy"], result["summary"]["swapped"]["accuracy"]
    # Chance is 0.5: a classifier that learnt the opacity scores well above it, one taught the
    # swapped labels as far below.
    assert real_acc["mean"] > 0.75 and swapped_acc["mean"] < 0.25, (real_acc, swapped_acc)
    assert result["summary"]["real"]["auc"]["mean"] > 0.85
    for run in result["runs"]:
        assert sum(map(sum, run["confusion"])) == len(test[1]) == 100
    diff = result["difference"]
    assert diff["of"] == "swapped - real"
    assert diff["accuracy"]["mean"] == pytest.approx(swapped_acc["mean"] - real_acc["mean"])


def test_scores_and_intervals():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    perfect = classification_scores(probs, torch.tensor([0, 1, 0, 1]), 2)
    assert perfect["accuracy"] == perfect["f1"] == perfect["auc"] == 1.0 and perfect["confusion"] == [[2, 0], [0, 2]]
    one_wrong = classification_scores(probs, torch.tensor([0, 1, 1, 1]), 2)
    assert one_wrong["accuracy"] == 0.75 and one_wrong["confusion"] == [[1, 0], [1, 2]]
    assert one_wrong["recall_per_class"] == [1.0, pytest.approx(2 / 3)]
    # mean 2, sample std 1, t(0.975, df=2) = 4.3027: half-width 4.3027 / sqrt(3)
    assert mean_and_ci([1.0, 2.0, 3.0]) == {"mean": 2.0, "ci": pytest.approx(4.302653 / 3**0.5, rel=1e-6), "n": 3}
    assert mean_and_ci([0.5])["ci"] is None


def test_tstr_and_augment_on_a_conditional_run(conditional_run, phantoms):
    _, shards = phantoms
    proc = run_cli("tstr", conditional_run, "--seeds", "2", *FAST, threads=1)
    assert "synthetic - real" in proc.stdout and "tested on 100 real images" in proc.stdout
    result = json.loads((conditional_run / "tstr" / "tstr-step0000020-ph32-val.json").read_text())
    assert result["classes"] == ["normal", "opacity"] and result["test"].endswith(":val")
    assert [r["arm"] for r in result["runs"]] == ["real", "synthetic"] * 2
    assert {r["n_train"] for r in result["runs"]} == {300}  # synthetic: as many as real, same class mix
    assert all(0 <= r[m] <= 1 for r in result["runs"] for m in ("accuracy", "f1", "precision", "recall", "auc"))
    assert result["summary"]["synthetic"]["accuracy"]["ci"] is not None
    run_cli("tstr", conditional_run, "--mode", "augment", "--seeds", "1", "--n", "60", *FAST, threads=1)
    augment = json.loads((conditional_run / "tstr" / "augment-step0000020-ph32-val.json").read_text())
    assert [(r["arm"], r["n_train"]) for r in augment["runs"]] == [("real", 300), ("real+synthetic", 360)]
    assert augment["difference"]["of"] == "real+synthetic - real"


def test_tstr_errors_are_one_line(conditional_run, phantoms, tmp_path):
    root, shards = phantoms
    assert_one_line_error(run_cli("tstr", conditional_run, "--mode", "mixup", check=False), "--mode mixup")
    assert_one_line_error(run_cli("tstr", conditional_run, "--seeds", "0", check=False), "--seeds 0")
    assert_one_line_error(run_cli("tstr", conditional_run, "--test-split", "test", check=False), "'test'")
    run_cli("train", "--gan", "dcgan64", "--data", shards, "--run-dir", tmp_path / "plain", *TINY, "train.steps=2",
            threads=1)  # fmt: skip
    assert_one_line_error(run_cli("tstr", tmp_path / "plain", check=False), "unconditional")
    loose = tmp_path / "loose.pt"
    loose.write_bytes((conditional_run / "checkpoints" / "step-0000020.pt").read_bytes())
    assert_one_line_error(run_cli("tstr", loose, check=False), "no readable config.json")
    other = tmp_path / "other"
    (other / "a").mkdir(parents=True)
    (other / "b").mkdir()
    from tests.conftest import make_image

    for i in range(4):
        make_image(other / "a" / f"{i}.png", 40, 40, seed=i)
        make_image(other / "b" / f"{i}.png", 40, 40, seed=10 + i)
    run_cli("shard", other, tmp_path / "other-shards", "--size", "32", "--val-fraction", "0.5")
    proc = run_cli("tstr", conditional_run, "--test", tmp_path / "other-shards", check=False)
    assert_one_line_error(proc, "classes", "normal")
