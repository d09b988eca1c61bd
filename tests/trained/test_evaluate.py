"""hpcgan/trained/evaluate.py against the training-time evaluation: both draw through
hpcgan/models/latents.py and compute through the metric registry, so the FID a run logs at step N
is the FID `hpcgan eval` gives step N's checkpoint with the same n, extractor and split; the batch
size does not change the images; --metrics picks from the registry and --help lists it."""

import json

import pytest

from tests.conftest import TINY32, assert_one_line_error, run_cli

N = 200  # not a multiple of the batch size: the last block is partial


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained-eval") / "ph32"
    run_cli("phantom", out, "--n", "144", "--size", "32", "--shard-size", "64", "--val-fraction", "0.1")
    return out


def last_line(path):
    return json.loads(path.read_text().splitlines()[-1])


@pytest.mark.parametrize("gan", ["dcgan64", "cgan64"])  # unconditional, and conditional on 2 classes
def test_training_fid_equals_hpcgan_eval_of_the_same_checkpoint(shards, tmp_path, gan):
    run = tmp_path / gan
    run_cli("train", "--gan", gan, "--data", shards, "--run-dir", run, *TINY32, "train.steps=20", "checkpoint.every=10",
            "eval.every=10", f"eval.n={N}", threads=1)  # fmt: skip
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    during = next(m for m in logged if m.get("step") == 10 and "fid" in m)
    run_cli("eval", run, "--checkpoints", "step-0000010.pt", "--n", N, threads=1)
    after = last_line(run / "eval.jsonl")
    print(f"{gan}: training-time FID {during['fid']!r}, hpcgan eval FID {after['fid']!r}")
    assert (after["step"], after["n_fake"], after["extractor"], after["split"]) == (
        10, during["n_fake"], during["extractor"], during["split"])  # fmt: skip
    assert after["fid"] == pytest.approx(during["fid"], rel=1e-4)
    for key in ("kid", "precision", "recall", "near_duplicates"):
        assert after[key] == pytest.approx(during[key], rel=1e-4, abs=1e-9), key
    # Another batch size draws the same images (image i depends on i alone); 32 reads the same 128
    # real images as 64 does (the real loader drops a partial batch), so only the blocks differ.
    run_cli("eval", run, "--checkpoints", "step-0000010.pt", "--n", N, "--batch-size", "32", threads=1)
    blocks_of_32 = last_line(run / "eval.jsonl")
    assert blocks_of_32["n_real"] == during["n_real"] == 128
    assert blocks_of_32["fid"] == pytest.approx(during["fid"], rel=1e-4)


def test_metrics_flag_picks_from_the_registry(shards, tmp_path):
    run = tmp_path / "run"
    run_cli("train", "--gan", "dcgan64", "--data", shards, "--run-dir", run, *TINY32, "train.steps=2", threads=1)
    run_cli("eval", run, "--n", "64", "--metrics", "precision_recall,fid_kid", threads=1)
    result = last_line(run / "eval.jsonl")
    assert result["metrics"] == ["precision_recall", "fid_kid"]
    assert {"fid", "kid", "precision", "recall_real"} <= result.keys()
    assert not {"ms_ssim", "near_duplicates", "inception_score"} & result.keys()
    assert (result["n_fake"], result["split"]) == (64, "train") and result["extractor"].startswith("random")
    run_cli("eval", run, "--n", "64", "--diversity-pairs", "8", threads=1)  # the default: all that apply
    assert last_line(run / "eval.jsonl")["metrics"] == ["fid_kid", "precision_recall", "near_duplicates",
                                                        "ms_ssim_diversity"]  # fmt: skip
    assert_one_line_error(run_cli("eval", run, "--metrics", "fid", check=False), "--metrics fid", "fid_kid")
    proc = run_cli("eval", run, "--n", "64", "--metrics", "inception_score", check=False)
    assert_one_line_error(proc, "--metrics inception_score", "--extractor inception")
    proc = run_cli("eval", run, "--n", "64", "--diversity-pairs", "0", "--metrics", "ms_ssim_diversity", check=False)
    assert_one_line_error(proc, "--metrics ms_ssim_diversity", "--diversity-pairs")
    from hpcgan.eval.registry import METRICS

    help_text = run_cli("eval", "--help").stdout
    assert all(name in help_text and metric.summary[:40] in help_text for name, metric in METRICS.items())
