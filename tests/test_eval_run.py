"""`hpcgan eval`: FID/KID of a trained run into eval.jsonl, real statistics cached by content hash,
the same result on 2 gloo ranks as on 1, and one-line errors."""

import json
import subprocess
import sys

import pytest

from hpcgan.data.index import ShardSet
from tests.conftest import REPO, TINY32, assert_one_line_error, run_cli, tiny_trained_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalrun")
    return tiny_trained_run(root)


def evals(run_dir):
    return [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]


def test_eval_writes_fid_and_kid_per_checkpoint_and_caches_real_statistics(trained):
    shards, run_dir = trained
    run_cli("eval", run_dir, "--n", "200", "--checkpoints", "all", threads=1)
    results = evals(run_dir)
    assert [r["step"] for r in results] == [10, 20, 30]
    assert all(r["fid"] > 0 and r["n_fake"] == 200 and r["n_real"] == 128 for r in results)
    assert all(0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 for r in results)
    assert all(0 < r["ms_ssim"] < 1 and 0 < r["ms_ssim_real"] < 1 for r in results)
    assert "inception_score" not in results[0]  # the random extractor has no classes
    cache = list((shards / "fid-stats").glob("train-random-not-comparable-seed0-32px-n128-*.npz"))
    assert len(cache) == 1 and ShardSet.open(shards).content_hash[:16] in cache[0].name
    before = cache[0].stat().st_mtime_ns
    run_cli("eval", run_dir, "--n", "200", threads=1)  # latest only, real statistics from the cache
    assert cache[0].stat().st_mtime_ns == before
    assert evals(run_dir)[-1]["fid"] == results[-1]["fid"]  # deterministic per (checkpoint, n)
    status = run_cli("status", run_dir)
    assert f"{results[-1]['fid']:.2f}" in status.stdout


def test_two_gloo_ranks_evaluate_the_same_images_as_one(trained, tmp_path):
    shards, run_dir = trained
    for cached in (shards / "fid-stats").glob("*.npz"):
        cached.unlink()  # the 2 ranks compute the real statistics themselves
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "hpcgan",
           "eval", str(run_dir), "--num-samples", "200"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = evals(run_dir)[-1]
    run_cli("eval", run_dir, "--n", "200", threads=1)
    one = evals(run_dir)[-1]
    assert (two["n_real"], two["n_fake"]) == (one["n_real"], one["n_fake"]) == (128, 200)
    assert two["fid"] == pytest.approx(one["fid"], rel=1e-6)
    # The kept features are the first images by number on any world size: KID and precision/recall agree too.
    for key in ("kid", "kid_std", "precision", "recall"):
        assert two[key] == pytest.approx(one[key], rel=1e-9, abs=1e-12), key


def test_eval_errors_are_one_line(trained, tmp_path):
    shards, run_dir = trained
    assert_one_line_error(run_cli("eval", run_dir, "--n", "3", check=False), "--n 3")
    assert_one_line_error(run_cli("eval", tmp_path, check=False), "no committed checkpoint")
    assert_one_line_error(run_cli("eval", run_dir, "--extractor", "clip", check=False), "--extractor clip")
    assert_one_line_error(run_cli("eval", run_dir, "--checkpoints", "best", check=False), "eval.every")
    assert_one_line_error(run_cli("eval", run_dir, "--checkpoints", "newest", check=False), "--checkpoints newest")
    proc = run_cli("eval", run_dir, "--extractor", "inception", check=False,
                   env={"HPCGAN_INCEPTION_WEIGHTS": "", "TORCH_HOME": str(tmp_path)})  # fmt: skip
    assert_one_line_error(proc, "--inception-weights", "HPCGAN_INCEPTION_WEIGHTS")
    proc = run_cli("train", "--gan", "dcgan64", "--data", shards, "--run-dir", tmp_path / "r", *TINY32, "eval.every=5",
                   "eval.extractor=inception", check=False, env={"TORCH_HOME": str(tmp_path)})  # fmt: skip
    assert_one_line_error(proc, "eval.weights=FILE", "pytorch-fid")
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_eval_with_the_inception_network_reports_the_inception_score(trained, tmp_path):
    """The standard extractor end to end, on random weights in pytorch-fid's layout (the real file
    is 95 MB from GitHub): 2048 features, IS from its logits, a cache keyed by the weights' hash."""
    from tests.test_eval_inception import random_state_dict

    shards, run_dir = trained
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    import torch

    torch.save(random_state_dict(1), weights)
    run_cli("eval", run_dir, "--extractor", "inception", "--inception-weights", weights, "--n", "24",
            "--batch-size", "12", "--checkpoints", "step-0000020.pt", "--diversity-pairs", "0", threads=1)  # fmt: skip
    result = evals(run_dir)[-1]
    assert result["step"] == 20 and result["extractor"].startswith("inception-2015-12-05-")
    assert 1 <= result["inception_score"] <= 1008 and "ms_ssim" not in result
    assert list((shards / "fid-stats").glob(f"train-{result['extractor']}-32px-n{result['n_real']}-*.npz"))


def test_fid_during_training_on_every_rank_keeps_the_best_and_changes_nothing(trained, tmp_path):
    shards, _ = trained
    common = ["--gan", "dcgan64", "--data", shards, *TINY32, "train.steps=20", "checkpoint.every=10"]
    run_cli("train", *common, "--run-dir", tmp_path / "plain", threads=1)
    run_cli("train", *common, "--run-dir", tmp_path / "evaluated", "eval.every=10", "eval.n=128", threads=1)
    fids = [json.loads(line) for line in (tmp_path / "evaluated" / "metrics.jsonl").read_text().splitlines()]
    fids = [m for m in fids if "fid" in m]
    assert [m["step"] for m in fids] == [10, 20] and all(m["fid"] > 0 and m["n_fake"] == 128 for m in fids)
    best = json.loads((tmp_path / "evaluated" / "checkpoints" / "best.json").read_text())
    assert best["fid"] == min(m["fid"] for m in fids) and best["step"] in (10, 20)
    run_cli("eval", tmp_path / "evaluated", "--checkpoints", "best", "--n", "128", threads=1)
    again = evals(tmp_path / "evaluated")[-1]
    assert (again["checkpoint"], again["step"]) == ("best.pt", best["step"])
    from tests.test_train import assert_identical, final_state

    # Evaluation draws from its own generators: training is bit-identical with or without it.
    assert_identical(final_state(tmp_path / "plain", 20), final_state(tmp_path / "evaluated", 20))
    # On 2 gloo ranks every rank takes part (no hang), with the same FID as on one.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "hpcgan.train", *map(str, common), "--run-dir", str(tmp_path / "ranks"), "eval.every=10",
           "eval.n=128"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = [json.loads(line) for line in (tmp_path / "ranks" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in two if "fid" in m] == [10, 20]
