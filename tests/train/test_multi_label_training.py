"""Training on label sets: multi-hot batches, balanced real batches and fake label sets, exact resume."""

import json

import pytest
import torch

from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from tests.conftest import run_cli
from tests.test_train import assert_identical, final_state

TINY = ["model.g_width=8", "model.d_width=8", "train.batch_size=16"]  # loader workers: the default 2


@pytest.fixture(scope="module")
def findings64(tmp_path_factory):
    out = tmp_path_factory.mktemp("findings") / "shards"
    run_cli("phantom", out, "--findings", "--n", "384", "--size", "64", "--shard-size", "64", "--workers", "2")
    return out


def finding_shares(loader: ShardLoader, batches: int) -> torch.Tensor:
    seen = []
    for labels in (labels for _, labels in loader):
        seen.append(labels)
        if len(seen) == batches:
            break
    return torch.cat(seen).mean(dim=0)


def test_loader_yields_the_stored_label_sets_and_balance_lifts_rare_findings(findings64):
    shard_set = ShardSet.open(findings64)
    classes = shard_set.classes
    counts = shard_set.train_class_counts()
    rarest = min(range(len(classes) - 1), key=lambda c: counts[c])
    plain = finding_shares(ShardLoader(shard_set, 16, seed=0), 20)
    balanced = finding_shares(ShardLoader(shard_set, 16, seed=0, balance="findings"), 20)
    total = shard_set.count("train")
    assert abs(plain[rarest].item() - counts[rarest] / total) < 0.06  # as stored
    assert balanced[rarest] > 1.5 * plain[rarest], (classes[rarest], plain.tolist(), balanced.tolist())
    assert balanced[-1] < plain[-1]  # No Finding, the commonest, is drawn less


@pytest.mark.parametrize("workers", [0, 2])
def test_balanced_loader_resumes_with_exactly_the_next_batch(findings64, workers):
    make = lambda: ShardLoader(findings64, 8, seed=3, num_workers=workers, balance="findings")  # noqa: E731
    whole = make()
    uninterrupted = [(im.clone(), lb.clone()) for _, (im, lb) in zip(range(30), whole, strict=False)]
    first = make()
    head = [(im.clone(), lb.clone()) for _, (im, lb) in zip(range(11), first, strict=False)]
    resumed = make()
    resumed.load_state_dict(first.state_dict())
    tail = [(im.clone(), lb.clone()) for _, (im, lb) in zip(range(19), resumed, strict=False)]
    for (a, la), (b, lb) in zip(uninterrupted, head + tail, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)
    for loader in (whole, first, resumed):
        loader.close()


def train(data, run_dir, gan, *overrides):
    args = ("train", "--gan", gan, "--data", data, "--run-dir", run_dir, *TINY, *overrides)
    return run_cli(*args, threads=1)


@pytest.mark.parametrize("gan", ["cgan64", "r3gan64"])
def test_label_set_run_stops_and_resumes_bit_identical(findings64, tmp_path, gan):
    # A fixed schedule span: the split run starts with train.steps=3, and r3gan's LR, beta2 and gamma
    # schedules span the whole run by default.
    extra = ["train.balance=findings", "train.label_sampling=balanced", "model.resolution=64", "train.schedule_kimg=1"]
    if gan == "r3gan64":
        extra.append("model.conditional=projection")
    train(findings64, tmp_path / "full", gan, "train.steps=8", *extra)
    train(findings64, tmp_path / "split", gan, "train.steps=3", *extra)
    proc = train(findings64, tmp_path / "split", gan, "train.steps=8", *extra)
    assert "resumed from" in proc.stderr
    full, split = final_state(tmp_path / "full", 8), final_state(tmp_path / "split", 8)
    assert_identical(full, split)
    assert full["label_sets"]["classes"][-1] == "No Finding"
    assert sum(full["label_sets"]["counts"].values()) == ShardSet.open(findings64).count("train")


def test_training_time_evaluation_reports_fid_per_finding(findings64, tmp_path):
    train(findings64, tmp_path / "run", "cgan64", "train.steps=4", "eval.every=4", "eval.n=64")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    per_finding = next(r["fid_per_finding"] for r in records if "fid_per_finding" in r)
    assert set(per_finding) == set(ShardSet.open(findings64).classes)
    assert all(v["fid"] > 0 and v["n_fake"] >= 2 for v in per_finding.values())
