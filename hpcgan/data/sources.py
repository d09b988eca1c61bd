"""Find the images of a dataset in any of the layouts chest X-ray sets ship in.

Each layout yields `SourceImage`s: a file, its class name and its split (None when the layout
has none; the shard writer then draws a validation split by --val-fraction), one class per image.
hpcgan/data/finding_sources.py gives each image its set of findings instead.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from hpcgan.errors import UserError

LAYOUTS = ("auto", "folders", "nih", "csv", "dicom")
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
NIH_MANIFEST = "Data_Entry_2017.csv"
UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class SourceImage:
    path: Path
    class_name: str  # for a multi-label image, its label set's name (label_sets.set_name)
    split: str | None
    findings: tuple[str, ...] | None = None  # multi-label only: its findings in class order (empty: none)


def discover(src: Path, layout: str = "auto", classes: list[str] | None = None) -> list[SourceImage]:
    """All candidate images under `src`, sorted by path, filtered to `classes` when given."""
    if not src.exists():
        raise UserError(f"{src}: no such file or folder")
    if layout == "auto":
        layout = detect_layout(src)
    finders = {"folders": _folders, "dicom": _dicom, "nih": _nih, "csv": _csv}
    if layout not in finders:
        raise UserError(f"--layout {layout}: expected one of {', '.join(LAYOUTS)}")
    images = finders[layout](src, classes)
    if classes is not None and layout != "nih":  # nih filters on its label sets itself
        images = [im for im in images if im.class_name in classes]
    if not images:
        wanted = f" of classes {', '.join(classes)}" if classes else ""
        raise UserError(f"{src}: no images{wanted} found in the {layout} layout")
    return sorted(images, key=lambda im: str(im.path))


def detect_layout(src: Path) -> str:
    if src.is_file():
        if src.suffix.lower() == ".csv":
            return "csv"
        raise UserError(f"{src}: expected a folder of images or a .csv manifest")
    if (src / NIH_MANIFEST).is_file():
        return "nih"
    if any(p.suffix.lower() in DICOM_SUFFIXES for p in _files(src)):
        return "dicom"
    return "folders"


def _files(root: Path) -> list[Path]:
    """Regular files below `root`, without hidden files or folders (.DS_Store, __MACOSX, ...)."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).parts
        if any(part.startswith((".", "__")) for part in rel) or not path.is_file():
            continue
        found.append(path)
    return found


def _split_of(rel_dirs: tuple[str, ...]) -> str | None:
    """The nearest enclosing folder named like a split (train/val/test)."""
    for name in reversed(rel_dirs):
        if name.lower() in SPLIT_NAMES:
            return SPLIT_NAMES[name.lower()]
    return None


def _folders(src: Path, classes: list[str] | None, only_suffixes: set[str] | None = None) -> list[SourceImage]:
    """`src/[split/]CLASS/file`: the folder holding a file is its class, a split-named ancestor
    its split. Every file counts, whatever its extension, so that a non-image placed among the
    images is reported in skipped.csv rather than silently ignored. Files directly in `src`
    (READMEs, licences) are not part of the dataset."""
    images = []
    for path in _files(src):
        rel_dirs = path.relative_to(src).parts[:-1]
        if not rel_dirs or (only_suffixes and path.suffix.lower() not in only_suffixes):
            continue
        parent = rel_dirs[-1]
        class_name = UNLABELLED if parent.lower() in SPLIT_NAMES else parent
        images.append(SourceImage(path, class_name, _split_of(rel_dirs)))
    return images


def _dicom(src: Path, classes: list[str] | None) -> list[SourceImage]:
    """DICOM files in the folders layout; files outside a class folder are 'unlabelled'."""
    images = _folders(src, classes, only_suffixes=DICOM_SUFFIXES)
    images += [SourceImage(p, UNLABELLED, None) for p in src.iterdir() if p.suffix.lower() in DICOM_SUFFIXES]
    return images


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(
                    f"{path}: missing column(s) {', '.join(missing)}; expected a header with {', '.join(required)}"
                )
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read CSV ({exc})") from None


def _csv(src: Path, classes: list[str] | None) -> list[SourceImage]:
    """A manifest `path,label[,split]`, paths relative to the manifest's folder."""
    if src.is_dir():
        raise UserError(f"{src}: --layout csv expects the manifest file itself, not a folder")
    rows = _read_csv(src, ("path", "label"))
    return [
        SourceImage(src.parent / r["path"], r["label"].strip(), row_split(src, r.get("split"), r["path"]))
        for r in rows
    ]


def row_split(src: Path, text: str | None, path: str) -> str | None:
    split = (text or "").strip().lower() or None
    if split is not None and split not in SPLIT_NAMES:
        raise UserError(f"{src}: split {split!r} for {path}; expected one of train, val, test")
    return SPLIT_NAMES.get(split or "", None)


def _nih(src: Path, classes: list[str] | None) -> list[SourceImage]:
    """NIH ChestX-ray14: 'Finding Labels' holds '|'-separated labels; images live in images*/.
    An image is kept when its label set is exactly one wanted class (all single-label images
    when no --classes). train_val_list.txt / test_list.txt, when present, give the splits."""
    images = []
    for path, labels, split in nih_rows(src):
        if len(labels) != 1:
            continue
        (label,) = labels
        if classes is not None and label not in classes:
            continue
        images.append(SourceImage(path, label, split))
    return images


def nih_rows(src: Path) -> list[tuple[Path, set[str], str | None]]:
    """(file, label set as written, split) per row of the NIH manifest."""
    rows = _read_csv(src / NIH_MANIFEST, ("Image Index", "Finding Labels"))
    located = {p.name: p for folder in sorted(src.glob("images*")) for p in _files(folder)}
    test_list = src / "test_list.txt"
    test_names = set(test_list.read_text().split()) if test_list.is_file() else None
    found = []
    for row in rows:
        labels = {label.strip() for label in row["Finding Labels"].split("|")}
        name = row["Image Index"].strip()
        split = None if test_names is None else ("test" if name in test_names else "train")
        # A listed image that is missing on disk is reported in skipped.csv, not dropped silently.
        found.append((located.get(name, src / "images" / name), labels, split))
    return found
