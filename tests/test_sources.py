"""Dataset layouts: class folders with and without split folders, NIH ChestX-ray14, CSV manifests."""

import pytest

from hpcgan.data.sources import detect_layout, discover
from hpcgan.errors import UserError
from tests.conftest import make_image


def test_class_folders_with_splits(tmp_path):
    for split in ("train", "val", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            make_image(tmp_path / "chest_xray" / split / cls / f"{split}-{cls}.jpeg", 40, 30)
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / "chest_xray" / "train" / "NORMAL" / ".DS_Store").write_text("hidden")
    images = discover(tmp_path)
    assert len(images) == 6
    assert {(im.split, im.class_name) for im in images} == {
        (s, c) for s in ("train", "val", "test") for c in ("NORMAL", "PNEUMONIA")
    }


def test_class_folders_without_splits(tmp_path):
    make_image(tmp_path / "normal" / "a.png", 40, 30)
    make_image(tmp_path / "opacity" / "b.png", 40, 30)
    images = discover(tmp_path, "folders", classes=["opacity"])
    assert [(im.class_name, im.split) for im in images] == [("opacity", None)]


def test_nih_keeps_single_label_images_of_listed_classes(tmp_path):
    rows = [
        ("a.png", "No Finding"),
        ("b.png", "Infiltration"),
        ("c.png", "Infiltration|Effusion"),
        ("d.png", "Effusion"),
        ("e.png", "No Finding"),
    ]
    (tmp_path / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #\n" + "".join(f"{n},{lab},0\n" for n, lab in rows)
    )
    for name, _ in rows:
        make_image(tmp_path / "images_001" / "images" / name, 32, 32)
    (tmp_path / "test_list.txt").write_text("e.png\n")
    assert detect_layout(tmp_path) == "nih"
    images = discover(tmp_path, "auto", classes=["No Finding", "Infiltration"])
    assert [(im.path.name, im.class_name, im.split) for im in images] == [
        ("a.png", "No Finding", "train"),
        ("b.png", "Infiltration", "train"),
        ("e.png", "No Finding", "test"),
    ]


def test_csv_manifest_with_split_column(tmp_path):
    make_image(tmp_path / "img" / "1.png", 32, 32)
    make_image(tmp_path / "img" / "2.png", 32, 32)
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,split\nimg/1.png,covid,train\nimg/2.png,normal,test\n")
    images = discover(manifest)
    assert [(im.path.name, im.class_name, im.split) for im in images] == [
        ("1.png", "covid", "train"),
        ("2.png", "normal", "test"),
    ]


def test_csv_manifest_without_label_column_is_a_clear_error(tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("file,diagnosis\na.png,x\n")
    with pytest.raises(UserError, match="missing column.*label"):
        discover(manifest)


def test_empty_source_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no images"):
        discover(tmp_path)
