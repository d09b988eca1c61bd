"""Real chest X-rays (../shared/data/kermany-cxr, 703 images in the Kaggle layout): sharding at
256 and 512 px, determinism, resume after a kill, inspection, and the loader on 2 gloo ranks x 2
workers. Skipped when the folder is absent."""

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from hpcgan.data.index import ShardSet
from tests.conftest import REPO, file_digests, kill_after_shards, run_cli

EXPECTED = {"train": {"NORMAL": 268, "PNEUMONIA": 312}, "test": {"NORMAL": 56, "PNEUMONIA": 67}}
SHARD_ARGS = ("--shard-size", "100", "--workers", "2")


def _shard(kermany, tmp_path_factory, size):
    out = tmp_path_factory.mktemp(f"kermany{size}") / "shards"
    return out, run_cli("shard", kermany / "chest_xray", out, "--size", str(size), *SHARD_ARGS)


@pytest.fixture(scope="module")
def shards256(kermany, tmp_path_factory):
    return _shard(kermany, tmp_path_factory, 256)


@pytest.fixture(scope="module")
def shards512(kermany, tmp_path_factory):
    return _shard(kermany, tmp_path_factory, 512)


@pytest.mark.parametrize("size", [256, 512])
def test_counts_classes_sizes_and_metadata(size, request, kermany):
    out, proc = request.getfixturevalue(f"shards{size}")
    assert "703 images" in proc.stderr and "skipped 0" in proc.stderr
    shard_set = ShardSet.open(out)
    assert shard_set.classes == ["NORMAL", "PNEUMONIA"] and shard_set.image_size == size
    for split, histogram in EXPECTED.items():
        assert shard_set.index["splits"][split]["histogram"] == histogram
    assert [s.path.name for s in shard_set.shards("test")] == ["test-000000.tar", "test-000001.tar"]

    manifest = {row["path"]: row for row in csv.DictReader((kermany / "manifest.csv").open())}
    seen = 0
    for shard in shard_set.shards("train"):
        labels = []
        for sample in wds.tarfile_samples(iter([{"url": str(shard.path)}])):
            meta = json.loads(sample["json"])
            row = manifest["chest_xray/" + meta["source"]]
            assert meta["sha256"] == row["sha256"] and meta["class_name"] == row["label"]
            gray = np.asarray(Image.open(io.BytesIO(sample[shard_set.extension])))
            assert gray.shape == (size, size) and gray.dtype == np.uint8 and gray.std() > 3  # a picture, not a blank
            labels.append(int(sample["cls"]))
            seen += 1
        assert 0.2 < np.mean(labels) < 0.8, "each shard mixes classes"
    assert seen == 580
    with Image.open(kermany / "chest_xray" / meta["source"]) as original:
        assert list(original.size) == meta["orig_size"]


def test_reshard_is_byte_identical_and_killed_run_resumes(shards256, kermany, tmp_path):
    reference, _ = shards256
    out = tmp_path / "again"
    kill_after_shards("shard", kermany / "chest_xray", out, "--size", "256", *SHARD_ARGS, out=out, at_least=2)
    assert 2 <= len(list(out.glob("*.tar"))) < 8 and not (out / "index.json").exists()
    run_cli("shard", kermany / "chest_xray", out, "--size", "256", *SHARD_ARGS)
    assert file_digests(out) == file_digests(reference)
    assert ShardSet.open(out).content_hash == ShardSet.open(reference).content_hash


def test_csv_manifest_gives_the_same_images(kermany, tmp_path):
    run_cli("shard", kermany / "manifest.csv", tmp_path / "csv", "--size", "64", *SHARD_ARGS)
    index = ShardSet.open(tmp_path / "csv").index
    assert index["settings"]["layout"] == "csv" and index["splits"]["train"]["count"] == 703


@pytest.mark.parametrize("size", [256, 512])
def test_inspect_prints_counts_and_writes_a_contact_sheet(size, request, tmp_path):
    out, _ = request.getfixturevalue(f"shards{size}")
    sheet = tmp_path / "sheet.png"
    proc = run_cli("inspect", out, "--sheet", sheet, "--per-class", "4")
    assert "580" in proc.stderr and "123" in proc.stderr and "PNEUMONIA" in proc.stderr
    with Image.open(sheet) as img:
        assert img.size == (110 + 4 * 128, 2 * 128)
        assert np.asarray(img)[:, 110:].std() > 10


def _torchrun(shards, out, *extra):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port on this host, found by torchrun itself
        "--nproc_per_node",
        "2",
        str(REPO / "tests" / "dist_loader_job.py"),
        str(shards),
        str(out),
        *map(str, extra),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((out / f"digests-{r}.json").read_text()) for r in range(2)]


def test_two_gloo_ranks_two_workers_equal_batches_and_exact_resume(shards256, tmp_path):
    shards, _ = shards256
    full = _torchrun(shards, tmp_path / "full", "--epochs", "2")
    per_epoch = 580 // (2 * 16)
    for rank in range(2):
        assert full[rank]["counts"] == [2 * per_epoch, 2 * per_epoch]
        assert full[rank]["batches_per_epoch"] == per_epoch
    assert full[0]["digests"] != full[1]["digests"]

    head = _torchrun(shards, tmp_path / "head", "--epochs", "2", "--stop-after", "23")
    tail = _torchrun(shards, tmp_path / "tail", "--epochs", "2", "--resume", tmp_path / "head", "--workers", "1")
    for rank in range(2):
        assert head[rank]["digests"] + tail[rank]["digests"] == full[rank]["digests"]
