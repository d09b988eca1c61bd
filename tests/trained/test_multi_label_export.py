"""`hpcgan sample` on a multi-label run: label sets asked for by name, drawn from the training
distribution, or topped up per finding (--fill-to); PNG folders with labels.csv, or a multi-label
shard set; one-line errors for unknown findings and unseen label sets."""

from __future__ import annotations

import csv
import io
import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from hpcgan.data.index import ShardSet
from hpcgan.data.label_sets import NO_FINDING, LabelSets
from hpcgan.data.phantom import _prepare_phantom
from hpcgan.data.read_split import read_split
from hpcgan.data.shard_options import ShardOptions
from hpcgan.data.shard_writer import planned_multi_label, write_shard_set
from hpcgan.errors import UserError
from hpcgan.trained.export import export_samples
from hpcgan.trained.export_plan import plan_label_sets
from hpcgan.trained.generator import load_generator
from tests.conftest import assert_one_line_error, run_cli
from tests.interrupted_export import export_interrupted

CLASSES = ["opacity", "effusion", "cardiomegaly", "nodule", NO_FINDING]
SHARES = (0.3, 0.2, 0.25, 0.0)  # nodule: a finding no image has
FINDINGS = CLASSES[:-1]


def findings_shard_set(out: Path, n: int = 256, val: int = 64, size: int = 64) -> Path:
    """A multi-label shard set of phantoms (opacity drawn in, the other findings only in the labels)
    with a val split: effusion and cardiomegaly never together, nodule never at all."""
    rng = np.random.default_rng(0)
    plan: dict[str, list] = {"train": [], "val": []}
    for i in range(n + val):
        findings = [c for c, p in zip(CLASSES[:-1], SHARES, strict=False) if rng.random() < p]
        if "effusion" in findings and "cardiomegaly" in findings:
            findings.remove("cardiomegaly")
        split = "train" if i < n else "val"
        job = (0, i, int("opacity" in findings))
        plan[split].append(planned_multi_label(f"{split}-{i:07d}", tuple(findings), CLASSES, job))
    options = ShardOptions(size=size, shard_size="64", workers=1)
    prepare = partial(_prepare_phantom, size=size, fmt=options.format)
    write_shard_set(out, {"source": "test findings", **options.settings()}, CLASSES, plan, prepare, options)
    return out


TINY = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=8", "train.num_workers=0",
        "train.sample_every=0"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 4-step multi-label cgan64 at 32 px on `findings_shard_set`, and a 2-step single-label one."""
    root = tmp_path_factory.mktemp("ml-export")
    data = findings_shard_set(root / "findings", size=32)
    run_cli("train", "--gan", "cgan64", "--data", data, "--run-dir", root / "ml", *TINY, "train.steps=4", threads=1)
    plain = root / "plain"
    run_cli("phantom", plain, "--n", "32", "--size", "32", "--workers", "1", threads=1)
    run_cli("train", "--gan", "cgan64", "--data", plain, "--run-dir", root / "single", *TINY, "train.steps=2",
            threads=1)  # fmt: skip
    return SimpleNamespace(data=data, ml=root / "ml", single=root / "single")


@pytest.fixture
def one_thread():
    """Byte-identical images need a fixed CPU reduction order (as tests/test_sample.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sample(*args, check=True):
    return run_cli("sample", *args, threads=1, check=check)


def label_rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "labels.csv").read_text())))


def gray(path_or_bytes) -> torch.Tensor:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as img:
        return torch.from_numpy(np.array(img))


def test_labels_gives_images_of_exactly_the_sets_asked_for(runs, tmp_path, one_thread):
    out = tmp_path / "png"
    args = (runs.ml, "--labels", "cardiomegaly|opacity", "--labels", "effusion", "--n", "7", "--out", out,
            "--batch-size", "3")  # fmt: skip
    proc = sample(*args)
    assert "7 synthetic images (2 label sets; per finding: opacity 4, effusion 3, cardiomegaly 4)" in proc.stderr
    rows = label_rows(out)
    # N split evenly across the sets, the remainder to the first; the set's name in class order.
    assert [r["label_set"] for r in rows] == ["opacity|cardiomegaly"] * 4 + ["effusion"] * 3
    assert list(rows[0]) == ["file", "label_set", "opacity", "effusion", "cardiomegaly", "nodule"]
    assert [r["file"] for r in rows[:5]] == [f"opacity+cardiomegaly/opacity+cardiomegaly-{k:06d}.png"
                                             for k in range(4)] + ["effusion/effusion-000000.png"]  # fmt: skip
    for row in rows:
        both = row["label_set"] == "opacity|cardiomegaly"
        assert [row[f] for f in FINDINGS] == (["1", "0", "1", "0"] if both else ["0", "1", "0", "0"])
    # Image k of a set is LatentSampler.of_set(set, k), drawn in the export's batches of 3.
    sampler = load_generator(runs.ml, "cpu").sampler(0)
    drawn = torch.cat([sampler.of_set("opacity|cardiomegaly", ks) for ks in torch.arange(4).split(3)])[:, 0]
    stored = torch.stack([gray(out / r["file"]) for r in rows[:4]])
    assert torch.equal(stored, drawn)
    manifest = json.loads((out / "sample.json").read_text())
    assert manifest["complete"] and manifest["label_sets"] == {"opacity|cardiomegaly": 4, "effusion": 3}
    assert manifest["settings"]["labels"] == ["opacity|cardiomegaly", "effusion"]
    assert "already exported" in sample(*args).stderr  # the same options again: nothing to do


def test_without_labels_sets_follow_the_data_and_fill_to_tops_every_finding_up(runs, tmp_path):
    label_sets = load_generator(runs.ml, "cpu").label_sets
    real = label_sets.finding_counts()
    out = tmp_path / "fill"
    proc = sample(runs.ml, "--n", "12", "--fill-to", "70", "--allow-unseen", "--out", out)
    expected = {c: max(0, 70 - real[c]) for c in label_sets.classes}
    assert expected["nodule"] == 70 and expected[NO_FINDING] == 0  # 112 real images with no finding
    added = ", ".join(f"{c} {n}" for c, n in expected.items())
    assert f"--fill-to 70 added (short of 70 real training images): {added}" in proc.stderr
    assert json.loads((out / "sample.json").read_text())["added"] == expected
    rows = label_rows(out)
    assert len(rows) == 12 + sum(expected.values())
    # The first N: the training distribution's fixed walk, as evaluations draw it.
    assert [r["label_set"] for r in rows[:12]] == label_sets.evaluation_names(range(12))
    # Then, class by class, as many images as it is short, each of a set that holds it: a set
    # seen in training (co-occurring findings as the data has them), or the finding alone when
    # no training image has it (--allow-unseen).
    position = 12
    for cls, short in expected.items():
        block = [r["label_set"] for r in rows[position : position + short]]
        position += short
        assert all(cls in name.split("|") for name in block), (cls, block)
        assert set(block) <= set(label_sets.counts) | {"nodule"}
    assert {"opacity", "opacity|effusion", "opacity|cardiomegaly"} <= {r["label_set"] for r in rows[12:]}
    for cls in label_sets.findings:
        generated = sum(r[cls] == "1" for r in rows)
        assert real[cls] + generated >= 70, cls
    # Each file is one image, numbered per set in export order.
    files = [r["file"] for r in rows]
    assert len(set(files)) == len(files) and all((out / f).is_file() for f in files)


def test_shard_export_is_a_multi_label_shard_set(runs, tmp_path, one_thread):
    out, reference = tmp_path / "shards", tmp_path / "reference"
    options = ("--n", "10", "--fill-to", "60", "--seed", "2", "--allow-unseen")
    sample(runs.ml, *options, "--out", out, "--format", "shards", "--shard-size", "16")
    sample(runs.ml, *options, "--out", reference)
    shard_set = ShardSet.open(out)
    manifest = json.loads((reference / "sample.json").read_text())
    assert shard_set.multi_label and shard_set.index["label_mode"] == "multi" and shard_set.classes == CLASSES
    assert shard_set.index["splits"]["train"]["combinations"] == dict(sorted(
        manifest["label_sets"].items(), key=lambda item: (-item[1], item[0])))  # fmt: skip
    assert json.loads((out / "sample.json").read_text())["added"] == manifest["added"]
    # Every stored image: its .hot is its label set, and its pixels are that set's image k of the PNG export.
    urls = [{"url": str(s.path)} for s in shard_set.shards("train")]
    stored = list(wds.tarfile_samples(iter(urls)))
    assert len(stored) == shard_set.count("train") == len(label_rows(reference))
    for member in stored:
        meta = json.loads(member["json"])
        name = meta["label_set"]
        hot = [int(ch) for ch in member["hot"].decode()]
        assert hot == label_sets_hot(name) and meta["findings"] == [f for f in name.split("|") if f != NO_FINDING]
        folder = name.replace("|", "+")
        assert member["png"] == (reference / folder / f"{folder}-{meta['index']:06d}.png").read_bytes()
    images, labels = read_split(shard_set, "train")
    assert labels.dtype == torch.float32 and labels.shape == (len(stored), len(CLASSES))
    assert torch.equal(labels, torch.tensor([[float(ch) for ch in m["hot"].decode()] for m in stored]))
    assert "contact sheet" in run_cli("inspect", out, threads=1).stderr
    proc = run_cli("train", "--gan", "cgan64", "--data", out, "--run-dir", tmp_path / "again", *TINY, "train.steps=2",
                   threads=1)  # fmt: skip
    assert "done: step 2" in proc.stderr


def test_interrupted_multi_label_shard_export_resumes_to_the_same_bytes(runs, tmp_path, one_thread):
    gen = load_generator(runs.ml, "cpu")
    options = dict(fmt="shards", shard_size="8", batch_size=4, fill_to=50, allow_unseen=True)
    clean = export_samples(gen, tmp_path / "clean", 20, **options).index
    export_interrupted(gen, tmp_path / "cut", 20, after_images=21, **options)  # in the third shard
    resumed = export_samples(gen, tmp_path / "cut", 20, **options)
    assert resumed.index["content_hash"] == clean["content_hash"]
    assert resumed.added == {"opacity": 0, "effusion": 0, "cardiomegaly": 1, "nodule": 50, NO_FINDING: 0}
    # Other options into the same folder are refused, never mixed.
    with pytest.raises(UserError, match="other settings"):
        export_samples(gen, tmp_path / "cut", 20, **dict(options, fill_to=60))


def label_sets_hot(name: str) -> list[int]:
    present = set(name.split("|")) - {NO_FINDING}
    hot = [int(c in present) for c in CLASSES[:-1]]
    return [*hot, int(not any(hot))]


@pytest.mark.parametrize(
    "case, args, fragments",
    [
        ("unknown finding", ["{ml}", "--labels", "opacity|Effusion", "--n", "2"],
         ["--labels 'opacity|Effusion'", "unknown finding 'Effusion'",
          "opacity, effusion, cardiomegaly, nodule, No Finding"]),
        ("unseen set", ["{ml}", "--labels", "effusion|cardiomegaly", "--n", "2"],
         ["--labels 'effusion|cardiomegaly'", "never occurs in the training data", "--allow-unseen"]),
        ("No Finding with findings", ["{ml}", "--labels", "No Finding|opacity", "--n", "2"], ["cannot be combined"]),
        ("labels without n", ["{ml}", "--labels", "opacity", "--fill-to", "5"], ["--labels opacity", "--n N"]),
        ("fill to an unseen finding", ["{ml}", "--fill-to", "50"], ["--fill-to 50", "'nodule'", "--allow-unseen"]),
        ("neither n nor fill", ["{ml}"], ["--n", "--fill-to"]),
        ("class on a multi-label run", ["{ml}", "--class", "opacity", "--n", "2"], ["--class opacity", "--labels"]),
        ("labels on a single-label run", ["{single}", "--labels", "opacity", "--n", "2"],
         ["--labels opacity", "single-label", "--class"]),
        ("fill-to on a single-label run", ["{single}", "--fill-to", "9"], ["--fill-to 9", "single-label"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_error(runs, tmp_path, case, args, fragments):
    args = [a.format(ml=runs.ml, single=runs.single) for a in args]
    proc = sample(*args, "--out", tmp_path / "out", check=False)
    assert_one_line_error(proc, *fragments)
    assert not (tmp_path / "out").exists()


def test_allow_unseen_draws_a_set_the_data_never_had(runs, tmp_path):
    out = tmp_path / "unseen"
    sample(runs.ml, "--labels", "cardiomegaly|effusion", "--n", "2", "--allow-unseen", "--out", out)
    assert [r["label_set"] for r in label_rows(out)] == ["effusion|cardiomegaly"] * 2


def test_fill_plan_is_a_function_of_the_seed_and_refuses_when_nothing_is_short():
    label_sets = LabelSets(("a", "b", NO_FINDING), {"a": 5, "a|b": 3, "b": 1, NO_FINDING: 9})
    plan = plan_label_sets(label_sets, None, fill_to=8, seed=0)
    assert plan.added == {"a": 0, "b": 4, NO_FINDING: 0}
    assert len(plan.names) == 4 and set(plan.names) <= {"b", "a|b"}
    assert plan.ks == [plan.names[:i].count(name) for i, name in enumerate(plan.names)]  # image k of its set
    assert plan_label_sets(label_sets, None, fill_to=8, seed=0) == plan
    draws = {tuple(plan_label_sets(label_sets, None, fill_to=40, seed=s).names) for s in range(3)}
    assert len(draws) == 3  # another seed, another draw of the co-occurring findings
    with pytest.raises(UserError, match=r"--fill-to 1: every finding already has 1 or more .* nothing to add"):
        plan_label_sets(label_sets, None, fill_to=1)
