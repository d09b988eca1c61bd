"""`hpcgan shard --labels multi`: NIH ChestX-ray14 label sets and CheXpert-style finding columns, the
--uncertain policies, one-line errors, resume refusal on a changed label file, single-label unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import webdataset as wds

from hpcgan.data.index import ShardSet
from hpcgan.data.label_sets import NO_FINDING
from tests.conftest import assert_one_line_error, file_digests, make_image, run_cli

NIH_ROWS = [  # (file, Finding Labels as NIH writes them)
    ("a.png", "No Finding"),
    ("b.png", "Infiltration"),
    ("c.png", "Infiltration|Effusion"),
    ("d.png", "Effusion"),
    ("e.png", "Cardiomegaly|Effusion|Infiltration"),
    ("f.png", "No Finding"),
    ("g.png", "Effusion|Cardiomegaly"),
]
SHARD = ("--size", "32", "--workers", "1")


def make_nih(root: Path, rows: list[tuple[str, str]] = NIH_ROWS, test: tuple[str, ...] = ("f.png",)) -> Path:
    (root / "Data_Entry_2017.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #\n" + "".join(f"{n},{lab},0\n" for n, lab in rows)
    )
    for i, (name, _) in enumerate(rows):
        make_image(root / "images_001" / "images" / name, 40, 36, seed=i)
    (root / "test_list.txt").write_text("".join(f"{n}\n" for n in test))
    return root


def read_samples(out: Path, key: Callable[[str], Any] = lambda source: Path(source).name) -> dict[Any, dict]:
    """key(source) -> {"hot": the .hot member as text (None without one), "meta": its json}."""
    urls = [{"url": str(p)} for p in sorted(out.glob("*.tar"))]
    found = {}
    for sample in wds.tarfile_samples(iter(urls)):
        meta = json.loads(sample["json"])
        found[key(meta["source"])] = {"hot": sample.get("hot", b"").decode() or None, "meta": meta}
    return found


def patient(source: str) -> int:
    return int(Path(source).parts[-3].removeprefix("patient"))


def test_nih_multi_keeps_every_image_with_its_label_set(tmp_path):
    src, out = make_nih(tmp_path / "nih"), tmp_path / "out"
    run_cli("shard", src, out, *SHARD)  # multi is the default for the NIH layout
    shard_set = ShardSet.open(out)
    assert shard_set.multi_label and shard_set.index["label_mode"] == "multi"
    assert shard_set.classes == ["Cardiomegaly", "Effusion", "Infiltration", NO_FINDING]
    assert shard_set.index["settings"]["labels"] == "multi" and "uncertain" not in shard_set.index["settings"]

    samples = read_samples(out)
    assert sorted(samples) == [name for name, _ in NIH_ROWS]
    expected_hot = {"a.png": "0001", "b.png": "0010", "c.png": "0110", "d.png": "0100", "e.png": "1110",
                    "f.png": "0001", "g.png": "1100"}  # fmt: skip
    assert {name: s["hot"] for name, s in samples.items()} == expected_hot
    assert samples["e.png"]["meta"]["findings"] == ["Cardiomegaly", "Effusion", "Infiltration"]
    assert samples["e.png"]["meta"]["class_name"] == "Cardiomegaly|Effusion|Infiltration"

    train, test = shard_set.index["splits"]["train"], shard_set.index["splits"]["test"]
    assert train["combinations"] == {"Cardiomegaly|Effusion": 1, "Cardiomegaly|Effusion|Infiltration": 1,
                                     "Effusion": 1, "Effusion|Infiltration": 1, "Infiltration": 1,
                                     NO_FINDING: 1}  # fmt: skip
    assert train["histogram"] == {"Cardiomegaly": 2, "Effusion": 4, "Infiltration": 3, NO_FINDING: 1}
    assert test["combinations"] == {NO_FINDING: 1} and test["count"] == 1
    assert shard_set.label_sets.counts == train["combinations"]


def test_nih_single_keeps_only_single_label_images_as_before(tmp_path):
    src, out = make_nih(tmp_path / "nih"), tmp_path / "out"
    run_cli("shard", src, out, *SHARD, "--labels", "single")
    shard_set = ShardSet.open(out)
    assert not shard_set.multi_label and "labels" not in shard_set.index["settings"]
    assert shard_set.classes == ["Effusion", "Infiltration", NO_FINDING]
    samples = read_samples(out)
    assert sorted(samples) == ["a.png", "b.png", "d.png", "f.png"]
    assert all(s["hot"] is None and "findings" not in s["meta"] for s in samples.values())


def test_nih_classes_restrict_the_findings_and_others_are_dropped(tmp_path):
    src, out = make_nih(tmp_path / "nih"), tmp_path / "out"
    run_cli("shard", src, out, *SHARD, "--classes", "Effusion,No Finding")
    shard_set = ShardSet.open(out)
    assert shard_set.classes == ["Effusion", NO_FINDING]
    samples = read_samples(out)
    assert samples["e.png"]["hot"] == "10" and samples["g.png"]["hot"] == "10"
    assert samples["f.png"]["hot"] == "01"  # NIH's No Finding: the empty set
    # Infiltration only: none of the kept findings, and not a normal radiograph either: left out.
    assert "b.png" not in samples and len(samples) == len(NIH_ROWS) - 1


CHEXPERT_HEADER = "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Edema,Pleural Effusion"
CHEXPERT_ROWS = [  # (patient, cells after Path; CheXpert writes 1.0/0.0/-1.0, blank = 0)
    (0, "Female,68,Frontal,AP,1.0,,0.0,"),
    (1, "Male,40,Frontal,PA,,1.0,-1.0,1.0"),
    (2, "Male,41,Lateral,,,-1,,"),
    (3, "Female,55,Frontal,PA,,0,,1"),
]


def make_chexpert(root: Path, rows: list[tuple[int, str]] = CHEXPERT_ROWS, name: str = "train.csv") -> Path:
    """CheXpert's own layout: train.csv inside CheXpert-v1.0-small/, its paths starting with that folder."""
    folder = root / "CheXpert-v1.0-small"
    for patient, _ in rows:
        make_image(folder / "train" / f"patient{patient}" / "study1" / "view1_frontal.jpg", 40, 36, seed=patient)
    lines = [f"CheXpert-v1.0-small/train/patient{p}/study1/view1_frontal.jpg,{cells}" for p, cells in rows]
    manifest = folder / name
    manifest.write_text("\n".join([CHEXPERT_HEADER, *lines]) + "\n")
    return manifest


UNCERTAIN_CASES = {  # policy -> patient -> .hot (Cardiomegaly, Edema, Pleural Effusion, No Finding)
    None: {0: "0001", 1: "1010", 2: "0001", 3: "0010"},
    "zero": {0: "0001", 1: "1010", 2: "0001", 3: "0010"},
    "one": {0: "0001", 1: "1110", 2: "1000", 3: "0010"},
    "drop": {0: "0001", 3: "0010"},
}


@pytest.mark.parametrize("uncertain", list(UNCERTAIN_CASES), ids=lambda u: str(u))
def test_chexpert_csv_maps_uncertain_findings_by_policy(tmp_path, uncertain):
    manifest, out = make_chexpert(tmp_path), tmp_path / "out"
    policy = ("--uncertain", uncertain) if uncertain else ()
    run_cli("shard", manifest, out, *SHARD, *policy)  # multi is the default for a CSV with finding columns
    shard_set = ShardSet.open(out)
    # Metadata columns and CheXpert's No Finding column are not findings; header order is class order.
    assert shard_set.classes == ["Cardiomegaly", "Edema", "Pleural Effusion", NO_FINDING]
    assert shard_set.index["settings"]["uncertain"] == (uncertain or "zero")
    hot = {p: s["hot"] for p, s in read_samples(out, patient).items()}
    assert hot == UNCERTAIN_CASES[uncertain]
    assert sum(shard_set.index["splits"]["train"]["combinations"].values()) == len(hot)


def test_csv_classes_pick_finding_columns_and_a_split_column_is_used(tmp_path):
    folder = tmp_path / "set"
    for i in range(3):
        make_image(folder / "img" / f"{i}.png", 40, 36, seed=i)
    manifest = folder / "list.csv"
    make_image(folder / "img" / "3.png", 40, 36, seed=3)
    manifest.write_text("path,split,Edema,Mass,sex\nimg/0.png,train,1,1,M\nimg/1.png,valid,0,1,F\nimg/2.png,test,,,F\n"
                        "img/3.png,train,1,0,F\n")  # fmt: skip
    run_cli("shard", manifest, tmp_path / "out", *SHARD, "--classes", "Mass")
    shard_set = ShardSet.open(tmp_path / "out")
    assert shard_set.classes == ["Mass", NO_FINDING] and shard_set.splits == ["test", "train", "val"]
    # 3.png has Edema only: not a No Finding image, so it is left out.
    assert {n: s["hot"] for n, s in read_samples(tmp_path / "out").items()} == {"0.png": "10", "1.png": "10",
                                                                                "2.png": "01"}  # fmt: skip


def test_a_value_outside_1_0_minus1_blank_names_file_row_and_column(tmp_path):
    rows = [*CHEXPERT_ROWS[:2], (2, "Male,41,Lateral,,,maybe,,"), CHEXPERT_ROWS[3]]
    manifest = make_chexpert(tmp_path, rows, name="bad.csv")
    proc = run_cli("shard", manifest, tmp_path / "out", *SHARD, check=False)
    assert_one_line_error(proc, "bad.csv", "row 4", "'Cardiomegaly'", "'maybe'")
    assert not (tmp_path / "out" / "index.json").exists()


def _folders(root: Path) -> Path:
    make_image(root / "NORMAL" / "a.png", 40, 36)
    return root


BAD_INPUT = [  # (case, source(tmp_path), extra args, fragments of the one line)
    ("unknown uncertain policy", make_chexpert, ("--uncertain", "half"), ("--uncertain half", "zero, one, drop")),
    ("unknown labels mode", make_chexpert, ("--labels", "both"), ("--labels both", "single or multi")),
    ("uncertain for nih", lambda p: make_nih(p / "nih"), ("--uncertain", "one"), ("--uncertain one", "CSV")),
    ("multi for folders", lambda p: _folders(p / "f"), ("--labels", "multi"), ("--labels multi", "folders")),
    ("single for a findings csv", make_chexpert, ("--labels", "single"), ("--labels single", "no label column")),
    ("unknown nih finding", lambda p: make_nih(p / "nih"), ("--classes", "Edema"),
     ("--classes Edema", "Data_Entry_2017.csv", "Cardiomegaly, Effusion, Infiltration")),
    ("unknown csv finding", make_chexpert, ("--classes", "Mass"), ("--classes Mass", "train.csv", "Edema")),
    ("only No Finding", make_chexpert, ("--classes", "No Finding"), ("--classes", "at least one finding")),
]  # fmt: skip


@pytest.mark.parametrize(("case", "source", "args", "words"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_multi_label_input_is_one_line(tmp_path, case, source, args, words):
    proc = run_cli("shard", source(tmp_path), tmp_path / "out", *SHARD, *args, check=False)
    assert_one_line_error(proc, *words)


def test_csv_without_finding_columns_in_multi_mode_is_one_line(tmp_path):
    make_image(tmp_path / "img" / "a.png", 40, 36)
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,Sex,AP/PA,No Finding\nimg/a.png,x,F,AP,1\n")
    proc = run_cli("shard", manifest, tmp_path / "out", *SHARD, "--labels", "multi", check=False)
    assert_one_line_error(proc, "list.csv", "no finding columns")


def test_a_changed_label_file_is_refused_and_an_unchanged_one_kept(tmp_path):
    manifest, out = make_chexpert(tmp_path), tmp_path / "out"
    run_cli("shard", manifest, out, *SHARD)
    before = file_digests(out)
    run_cli("shard", manifest, out, *SHARD)
    assert file_digests(out) == before
    manifest.write_text(manifest.read_text().replace("Female,55,Frontal,PA,,0,,1", "Female,55,Frontal,PA,,1,,1"))
    proc = run_cli("shard", manifest, out, *SHARD, check=False)
    assert_one_line_error(proc, "other settings", "source_fingerprint")
    proc = run_cli("shard", manifest, out, *SHARD, "--uncertain", "one", check=False)
    assert_one_line_error(proc, "other settings")


def test_single_label_csv_with_extra_columns_stays_single(tmp_path):
    for i in range(2):
        make_image(tmp_path / "img" / f"{i}.png", 40, 36, seed=i)
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,patient,sha256\nimg/0.png,NORMAL,p0,x\nimg/1.png,PNEUMONIA,p1,y\n")
    run_cli("shard", manifest, tmp_path / "out", *SHARD)
    shard_set = ShardSet.open(tmp_path / "out")
    assert not shard_set.multi_label and shard_set.classes == ["NORMAL", "PNEUMONIA"]
    settings = shard_set.index["settings"]
    assert "labels" not in settings and "uncertain" not in settings
    assert all(s["hot"] is None for s in read_samples(tmp_path / "out").values())
