"""`hpcgan memorization`: a generator that returns training images (exact or with a little noise) is
flagged, one that draws fresh images from the same distribution is not, and the command writes
memorization.json and a decodable closest-pairs picture for a trained run, with one-line errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hpcgan.data.index import ShardSet
from hpcgan.data.phantom import render_phantom
from hpcgan.eval.extractors import build_extractor
from hpcgan.eval.memorization import check_memorization, image_batches, nearest_neighbours, split_loader
from hpcgan.eval.pairs_image import layout, tile_side
from tests.conftest import assert_one_line_error, run_cli, tiny_trained_run

BATCH = 64


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("memrun")
    return tiny_trained_run(root)


@pytest.fixture(scope="module")
def real(trained):
    """(train images, val images) of the phantom set, every image once."""
    shard_set = ShardSet.open(trained[0])
    return tuple(torch.cat(list(image_batches(split_loader(shard_set, split)))) for split in ("train", "val"))


@pytest.fixture(scope="module")
def extractor():
    return build_extractor("random")[0]


def replay(images: torch.Tensor):
    """A 'generator' whose batch k (the seed) is images[k * BATCH:], as the check draws batches."""
    return lambda n, seed: images[seed * BATCH : seed * BATCH + n]


def test_nearest_neighbours_chunked_and_leave_one_out_match_brute_force():
    gen = torch.Generator().manual_seed(0)
    query, reference = torch.randn(37, 5, generator=gen), torch.randn(23, 5, generator=gen)
    brute = ((query[:, None].double() - reference[None].double()) ** 2).sum(-1).sqrt()
    for chunk in (None, 1, 7, 100):
        d, i = nearest_neighbours(query, reference, chunk=chunk)
        assert torch.equal(i, brute.argmin(1)) and torch.allclose(d, brute.min(1).values)
    self_brute = ((reference[:, None].double() - reference[None].double()) ** 2).sum(-1).sqrt()
    self_brute.fill_diagonal_(float("inf"))
    d, i = nearest_neighbours(reference, reference, exclude_self=True, chunk=4)
    assert torch.equal(i, self_brute.argmin(1)) and torch.allclose(d, self_brute.min(1).values)
    assert nearest_neighbours(reference, reference)[0].max() < 1e-6  # float64: copies are ~0, not round-off


def test_split_loader_reads_every_image_once(real, trained):
    train, val = real
    shard_set = ShardSet.open(trained[0])
    assert (len(train), len(val)) == (shard_set.count("train"), shard_set.count("val")) == (130, 14)
    assert len(torch.unique(train.flatten(1), dim=0)) == 130  # 130 is no multiple of 64: none dropped


def test_copies_of_training_images_are_flagged_and_paired_with_their_originals(real, trained, extractor, tmp_path):
    train, val = real
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))
    copies = train[order]
    noise = torch.randint(-3, 4, copies.shape, generator=torch.Generator().manual_seed(2))
    noisy = (copies.int() + noise).clamp(0, 255).to(torch.uint8)
    loader = split_loader(ShardSet.open(trained[0]), "train")  # read twice: the picture rewinds it
    exact = check_memorization(replay(copies), len(copies), loader, extractor, heldout=val, pairs=8,
                               batch_size=BATCH, pairs_png=tmp_path / "pairs.png")  # fmt: skip
    near = check_memorization(replay(noisy), len(noisy), train, extractor, heldout=val, batch_size=BATCH)
    for report in (exact, near):
        baseline = report["baseline"]["heldout"]["p5"]
        assert report["near_copy_fraction"] == 1.0 and report["near_copies"] == 130
        assert report["generated"]["p95"] < 0.3 * baseline and report["median_ratio"] < 0.3
        assert report["baseline_near_copy_fraction"] == {"train_leave_one_out": 0.0, "heldout": 0.0}
        assert all(p["train"] == int(order[p["generated"]]) and p["near_copy"] for p in report["closest_pairs"])
    assert exact["generated"]["p95"] < 1e-6 * exact["baseline"]["train_leave_one_out"]["p50"]
    # The picture: each generated image beside the very same training image.
    picture = np.asarray(Image.open(tmp_path / "pairs.png").convert("L"))
    tile = tile_side(32)
    assert picture.shape[::-1] == layout(8, tile)[1:] == (550, 174)
    for n in range(8):
        row, col = divmod(n, 4)
        x, y = 6 + col * (2 * tile + 2 + 6), 6 + row * (tile + 14 + 6)
        left, right = picture[y : y + tile, x : x + tile], picture[y : y + tile, x + tile + 2 : x + 2 * tile + 2]
        assert np.array_equal(left, right) and left.std() > 0


def test_fresh_images_from_the_same_distribution_are_not_flagged(real, extractor):
    train, val = real
    fresh = np.stack([render_phantom(seed=1, index=i, label=i % 2, size=32) for i in range(200)])
    fresh = torch.from_numpy(fresh).unsqueeze(1)  # new phantoms: same generator, other seed
    for images in (val, fresh):
        report = check_memorization(replay(images), len(images), train, extractor, heldout=val, batch_size=BATCH)
        assert report["near_copy_fraction"] == 0.0 and not any(p["near_copy"] for p in report["closest_pairs"])
        assert 0.8 < report["median_ratio"] < 1.25
        assert report["n_generated"] == len(images) and report["n_train"] == 130 and report["n_heldout"] == 14
    with pytest.raises(TypeError, match="one-shot"):
        check_memorization(replay(val), 4, iter([train]), extractor)


def test_memorization_command_writes_report_and_picture(trained, tmp_path):
    shards, run_dir = trained
    proc = run_cli("memorization", run_dir, "--n", "200", "--pairs", "6", threads=1)
    out = run_dir / "memorization" / "step-0000030"
    report = json.loads((out / "memorization.json").read_text())
    assert (report["n_generated"], report["n_train"], report["n_heldout"], report["step"]) == (200, 130, 14, 30)
    assert (report["split"], report["heldout_split"], report["threshold"]) == ("train", "val", 0.5)
    assert report["extractor"].startswith("random") and report["data"] == str(shards)
    distances = [p["distance"] for p in report["closest_pairs"]]
    assert len(distances) == 6 and distances == sorted(distances) and distances[0] == report["generated"]["min"]
    # 30 steps make noise, far from every training image: nothing is a copy.
    assert report["near_copy_fraction"] == 0.0 and report["median_ratio"] > 1
    assert report["near_copy_threshold"] == pytest.approx(0.5 * report["baseline"]["train_leave_one_out"]["p50"])
    with Image.open(out / "closest-pairs.png") as picture:
        picture.load()
        assert picture.size == (550, 174)  # 6 pairs of 64 px tiles: 4 per row, 2 rows
    assert "near copies" in proc.stderr and "0/200" in proc.stderr
    # --out and --threshold: a huge threshold makes every sample a near copy; the same images and pairs.
    run_cli("memorization", run_dir, "--n", "200", "--pairs", "6", "--threshold", "100", "--out", tmp_path / "m",
            threads=1)  # fmt: skip
    loose = json.loads((tmp_path / "m" / "memorization.json").read_text())
    assert loose["near_copy_fraction"] == 1.0 and loose["near_copies"] == 200
    assert [(p["generated"], p["train"]) for p in loose["closest_pairs"]] == [
        (p["generated"], p["train"]) for p in report["closest_pairs"]
    ]


def test_memorization_errors_are_one_line(trained, tmp_path):
    _, run_dir = trained
    assert_one_line_error(run_cli("memorization", run_dir, "--n", "0", check=False), "--n 0")
    assert_one_line_error(run_cli("memorization", tmp_path, check=False), "no valid checkpoint")
    assert_one_line_error(run_cli("memorization", tmp_path / "nope", check=False), "no such run")
    assert_one_line_error(run_cli("memorization", run_dir, "--extractor", "clip", check=False), "--extractor clip")
    assert_one_line_error(run_cli("memorization", run_dir, "--split", "test", check=False), "no split 'test'")
    assert_one_line_error(run_cli("memorization", run_dir, "--threshold", "0", check=False), "--threshold 0")
