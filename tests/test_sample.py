"""`hpcgan sample`: a trained run's generator exported as PNG folders or as a shard set that
training and inspection accept; deterministic per seed, per class, and strict about bad input."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import webdataset as wds
from PIL import Image

from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.trained.export import export_samples
from hpcgan.trained.generator import load_generator
from tests.conftest import assert_one_line_error, file_digests, run_cli
from tests.interrupted_export import export_interrupted

TINY = [
    "model.resolution=32",
    "model.g_width=8",
    "model.d_width=8",
    "train.batch_size=8",
    "train.num_workers=0",
    "train.sample_every=0",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 4-step conditional GAN (with EMA) and a 4-step unconditional DCGAN without EMA, at 32 px."""
    root = tmp_path_factory.mktemp("sample")
    data = root / "phantoms"
    run_cli("phantom", data, "--n", "32", "--size", "32", "--workers", "1", threads=1)
    train = ("train", "--data", data, *TINY, "train.steps=4")
    run_cli(*train, "--gan", "cgan64", "--run-dir", root / "cgan", threads=1)
    run_cli(*train, "--gan", "dcgan64", "--run-dir", root / "dcgan", "train.ema=0", threads=1)
    return SimpleNamespace(data=data, cgan=root / "cgan", dcgan=root / "dcgan")


def sample(*args):
    return run_cli("sample", *args, threads=1)


def pngs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_png_export_splits_n_across_classes(runs, tmp_path):
    out = tmp_path / "png"
    proc = sample(runs.cgan, "--n", "7", "--out", out, "--batch-size", "3")
    assert "7 synthetic images (normal 4, opacity 3)" in proc.stderr and "EMA generator" in proc.stderr
    files = pngs(out)
    assert sorted(files) == [f"normal/normal-{k:06d}.png" for k in range(4)] + [
        f"opacity/opacity-{k:06d}.png" for k in range(3)
    ]
    for path in files:
        with Image.open(out / path) as img:
            assert (img.mode, img.size) == ("L", (32, 32))
    manifest = json.loads((out / "sample.json").read_text())
    assert manifest["complete"] and manifest["counts"] == {"normal": 4, "opacity": 3}
    assert manifest["settings"]["step"] == 4 and manifest["settings"]["generator"] == "ema"
    # The same command again finds its own complete export and leaves it alone.
    again = sample(runs.cgan, "--n", "7", "--out", out, "--batch-size", "3")
    assert "already exported" in again.stderr and pngs(out) == files


@pytest.fixture
def one_thread():
    """Byte-identical images need a fixed CPU reduction order: once, under CI load, two 2-thread
    runs with the same seed differed by a pixel (as a trainer run did before its tests went to 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_seed_decides_the_bytes_and_class_picks_one(runs, tmp_path, one_thread):
    gen = load_generator(runs.cgan)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        export_samples(gen, tmp_path / name, 6, seed=seed, batch_size=4)
    a, b, c = (pngs(tmp_path / name) for name in "abc")
    assert a == b and (tmp_path / "a" / "sample.json").read_bytes() == (tmp_path / "b" / "sample.json").read_bytes()
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)
    # --class: all N of that class, and image k is the one the full export made (same latent stream).
    result = export_samples(gen, tmp_path / "one", 3, class_name="opacity", batch_size=2)
    assert result.counts == [0, 3]
    assert pngs(tmp_path / "one") == {k: v for k, v in a.items() if k.startswith("opacity/")}
    # Shards too: byte-identical tars for the same seed, other content for another.
    hashes = [
        export_samples(gen, tmp_path / f"s{i}", 6, "shards", seed=seed).index["content_hash"]
        for i, seed in enumerate((0, 0, 1))
    ]
    assert hashes[0] == hashes[1] != hashes[2]
    assert file_digests(tmp_path / "s0") == file_digests(tmp_path / "s1")


def test_interrupted_shard_export_resumes_to_the_same_bytes(runs, tmp_path, one_thread):
    gen = load_generator(runs.cgan)
    options = dict(fmt="shards", shard_size="8", batch_size=4)
    clean = export_samples(gen, tmp_path / "clean", 30, **options).index

    export_interrupted(gen, tmp_path / "cut", 30, after_images=21, **options)  # in the third shard
    # The resumed run starts each class's latent stream mid-way, after the two complete shards.
    assert export_samples(gen, tmp_path / "cut", 30, **options).index["content_hash"] == clean["content_hash"]


def test_shard_export_is_a_shard_set_for_training_and_inspection(runs, tmp_path):
    out = tmp_path / "shards"
    sample(runs.cgan, "--n", "20", "--out", out, "--format", "shards", "--shard-size", "8", "--seed", "3")
    shard_set = ShardSet.open(out)
    assert shard_set.classes == ["normal", "opacity"] and shard_set.image_size == 32
    assert shard_set.count("train") == 20 and len(shard_set.shards("train")) == 3
    assert shard_set.index["splits"]["train"]["histogram"] == {"normal": 10, "opacity": 10}
    batches = list(ShardLoader(out, batch_size=4))
    images = torch.cat([im for im, _ in batches])
    labels = torch.cat([lab for _, lab in batches])
    assert images.shape == (20, 1, 32, 32) and images.dtype == torch.uint8
    assert labels.bincount().tolist() == [10, 10]

    # Labels are the run's class indices: each stored image is that class's image k of a PNG export.
    reference = tmp_path / "reference"
    export_samples(load_generator(runs.cgan), reference, 20, seed=3)
    urls = [{"url": str(s.path)} for s in shard_set.shards("train")]
    for stored in wds.tarfile_samples(iter(urls)):
        meta = json.loads(stored["json"])
        name = shard_set.classes[int(stored["cls"])]
        assert meta["class_name"] == name and meta["synthetic"] and meta["seed"] == 3
        assert meta["checkpoint_step"] == 4 and meta["run"] == str(runs.cgan.resolve())
        assert stored["png"] == (reference / name / f"{name}-{meta['index']:06d}.png").read_bytes()

    assert "contact sheet" in run_cli("inspect", out, threads=1).stderr
    proc = run_cli(
        "train", "--gan", "cgan64", "--data", out, "--run-dir", tmp_path / "run2", *TINY, "train.steps=2", threads=1
    )
    assert "done: step 2" in proc.stderr


def test_unconditional_run_without_ema_samples_g_as_one_class(runs, tmp_path):
    gen = load_generator(runs.dcgan)
    assert (gen.which, gen.conditional, gen.classes) == ("g", False, ["synthetic"])
    checkpoint = runs.cgan / "checkpoints" / "step-0000004.pt"
    assert load_generator(checkpoint).step == 4  # a checkpoint file works as RUN too
    out = tmp_path / "uncond"
    proc = sample(runs.dcgan, "--n", "5", "--out", out, "--format", "shards")
    assert "no EMA" in proc.stderr
    shard_set = ShardSet.open(out)
    assert shard_set.classes == ["synthetic"] and shard_set.index["splits"]["train"]["histogram"] == {"synthetic": 5}
    (images, labels), *_ = ShardLoader(out, batch_size=5)
    assert images.shape == (5, 1, 32, 32) and labels.tolist() == [0] * 5
    assert images.float().std() > 0  # not a blank generator
    metas = [json.loads(s["json"]) for s in wds.tarfile_samples(iter([{"url": str(out / "train-000000.tar")}]))]
    assert {m["generator"] for m in metas} == {"g"} and sorted(m["index"] for m in metas) == list(range(5))


@pytest.mark.parametrize(
    "case, args, fragments",
    [
        ("missing run", ["{tmp}/nope", "--n", "2"], ["RUN", "no such run directory"]),
        ("no checkpoint", ["{tmp}", "--n", "2"], ["RUN", "no valid checkpoint"]),
        ("n zero", ["{cgan}", "--n", "0"], ["--n 0"]),
        ("bad format", ["{cgan}", "--n", "2", "--format", "tif"], ["--format tif", "png, shards"]),
        ("unknown class", ["{cgan}", "--n", "2", "--class", "cat"], ["--class cat", "normal, opacity"]),
        ("class on unconditional", ["{dcgan}", "--n", "2", "--class", "normal"], ["--class normal", "unconditional"]),
        ("non-empty out", ["{cgan}", "--n", "2", "--out", "{data}"], ["--out", "not empty"]),
    ],
)
def test_bad_input_is_one_line_error(runs, tmp_path, case, args, fragments):
    names = dict(tmp=tmp_path, cgan=runs.cgan, dcgan=runs.dcgan, data=runs.data)
    args = [a.format(**names) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    proc = run_cli("sample", *args, check=False, threads=1)
    assert_one_line_error(proc, *fragments)
    assert not (tmp_path / "out").exists()
