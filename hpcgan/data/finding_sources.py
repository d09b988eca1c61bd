"""Multi-label sources: each image with its set of findings (hpcgan/data/label_sets.py), from NIH
ChestX-ray14's '|'-separated labels or a CheXpert-style CSV with one 1/0/-1/blank column per
finding; and which of the two modes (`--labels single|multi`) a source is sharded in.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from hpcgan.data.label_sets import NO_FINDING, SEPARATOR, set_name
from hpcgan.data.sources import NIH_MANIFEST, SourceImage, detect_layout, nih_rows, row_split
from hpcgan.errors import UserError

LABEL_MODES = ("single", "multi")
UNCERTAIN_POLICIES = ("zero", "one", "drop")  # what a CheXpert -1 (uncertain) becomes
# Columns of a multi-label CSV that are not findings (compared lower-case); "No Finding" is not a
# finding either: an image without findings has the empty set whatever that column says.
METADATA_COLUMNS = frozenset({"path", "split", "label", "sex", "age", "frontal/lateral", "ap/pa", NO_FINDING.lower()})


@dataclass(frozen=True)
class MultiLabelSource:
    images: list[SourceImage]
    findings: list[str]  # class order; the shard set's classes are these followed by NO_FINDING


def label_mode(src: Path, layout: str, labels: str | None, uncertain: str | None) -> str:
    """`--labels` resolved against the layout (default: multi for NIH and for a CSV manifest with
    finding columns but no `label` column, single otherwise); bad combinations are one line."""
    if labels is not None and labels not in LABEL_MODES:
        raise UserError(f"--labels {labels}: expected single or multi")
    if uncertain is not None and uncertain not in UNCERTAIN_POLICIES:
        raise UserError(f"--uncertain {uncertain}: expected one of {', '.join(UNCERTAIN_POLICIES)}")
    if labels is None:
        labels = "multi" if layout == "nih" or (layout == "csv" and _is_findings_csv(src)) else "single"
    if labels == "multi" and layout not in ("nih", "csv"):
        raise UserError(f"--labels multi: the {layout} layout gives one class per image; label sets need the nih "
                        "layout or a CSV manifest with one column per finding")  # fmt: skip
    if labels == "single" and layout == "csv" and _is_findings_csv(src):
        raise UserError(f"--labels single: {src} has finding columns but no label column; shard it with "
                        "--labels multi, or add a label column (one class per image)")  # fmt: skip
    if uncertain is not None and (labels != "multi" or layout != "csv"):
        raise UserError(f"--uncertain {uncertain}: applies only to a CSV manifest with finding columns "
                        "(1, 0, -1 = uncertain) sharded with --labels multi")  # fmt: skip
    return labels


def _is_findings_csv(src: Path) -> bool:
    if not src.is_file():
        return False
    header = _csv_header(src)
    return "label" not in header and bool(_finding_columns(header))


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read CSV ({exc})") from None


def _finding_columns(header: list[str]) -> list[str]:
    return [c for c in header if c.strip() and c.strip().lower() not in METADATA_COLUMNS]


def discover_multi_label(
    src: Path, layout: str = "auto", classes: list[str] | None = None, uncertain: str = "zero"
) -> MultiLabelSource:
    """Every image with its set of findings, sorted by path. `classes` picks the findings (in that
    order): an image's other findings are dropped, and an image with only other findings is left out
    (it is not a No Finding image: the empty set would teach a generator that it looks normal)."""
    if not src.exists():
        raise UserError(f"{src}: no such file or folder")
    if layout == "auto":
        layout = detect_layout(src)
    if layout == "nih":
        source = _nih_multi(src, classes)
    elif layout == "csv":
        source = _csv_multi(src, classes, uncertain)
    else:
        raise UserError(f"--labels multi: the {layout} layout gives one class per image")
    if not source.images:
        raise UserError(f"{src}: no images found in the {layout} layout")
    return MultiLabelSource(sorted(source.images, key=lambda im: str(im.path)), source.findings)


def _pick_findings(classes: list[str] | None, available: list[str], where: Path) -> list[str]:
    """The findings --classes names (NO_FINDING is always the last class, so it is skipped)."""
    if classes is None:
        return available
    wanted = list(dict.fromkeys(c for c in classes if c != NO_FINDING))
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise UserError(f"--classes {unknown[0]}: not a finding of {where}; its findings are "
                        f"{', '.join(available) or 'none'}")  # fmt: skip
    if not wanted:
        raise UserError(f"--classes: name at least one finding of {where} ({NO_FINDING} is always the last class)")
    return wanted


def _multi_image(path: Path, present: set[str], findings: list[str], split: str | None) -> SourceImage:
    ordered = tuple(f for f in findings if f in present)
    return SourceImage(path, set_name(ordered, [*findings, NO_FINDING]), split, ordered)


def _nih_multi(src: Path, classes: list[str] | None) -> MultiLabelSource:
    """NIH ChestX-ray14 with every image kept; its 'No Finding' label is the empty set."""
    rows = nih_rows(src)
    seen = sorted({label for _, labels, _ in rows for label in labels} - {NO_FINDING, ""})
    findings = _pick_findings(classes, seen, src / NIH_MANIFEST)
    kept = [(path, labels, split) for path, labels, split in rows if not _only_other_findings(labels, findings)]
    return MultiLabelSource([_multi_image(path, labels, findings, split) for path, labels, split in kept], findings)


def _only_other_findings(present: set[str], findings: list[str]) -> bool:
    """Findings, but none of those picked by --classes."""
    others = present - {NO_FINDING, ""}
    return bool(others) and not others & set(findings)


def _csv_multi(src: Path, classes: list[str] | None, uncertain: str) -> MultiLabelSource:
    """A CheXpert-style manifest: a path column, optional split, one column per finding holding
    1, 0, -1 (uncertain, mapped by `uncertain`; "drop" leaves the image out) or blank (= 0)."""
    if src.is_dir():
        raise UserError(f"{src}: --layout csv expects the manifest file itself, not a folder")
    try:
        with src.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader]  # line_num: the row number a spreadsheet shows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{src}: cannot read CSV ({exc})") from None
    path_column = next((c for c in header if c.strip().lower() == "path"), None)
    split_column = next((c for c in header if c.strip().lower() == "split"), None)
    if path_column is None:
        raise UserError(f"{src}: no path column; expected a header with path (or Path), optional split, and one "
                        "column per finding")  # fmt: skip
    columns = _finding_columns(header)
    if not columns:
        raise UserError(f"{src}: no finding columns; --labels multi expects one column per finding (1, 0, -1 or "
                        f"blank) besides {', '.join(header)}")  # fmt: skip
    if any(SEPARATOR in c for c in columns):
        raise UserError(f"{src}: column {next(c for c in columns if SEPARATOR in c)!r}: a finding's name cannot "
                        f"hold {SEPARATOR!r} (it joins the findings of a label set)")  # fmt: skip
    findings = _pick_findings(classes, columns, src)
    base = _manifest_base(src, rows[0][1].get(path_column) if rows else None)
    images, dropped = [], 0
    for line, row in rows:
        rel = (row.get(path_column) or "").strip()
        if not rel:
            raise UserError(f"{src}: row {line}, column {path_column!r}: empty path")
        flags = {f: _flag(src, line, f, row.get(f)) for f in findings}
        if uncertain == "drop" and -1 in flags.values():
            dropped += 1
            continue
        present = {f for f, v in flags.items() if v == 1 or (v == -1 and uncertain == "one")}
        if not present and any(_flag(src, line, c, row.get(c)) == 1 for c in columns if c not in flags):
            continue  # positive only for findings --classes left out: not a No Finding image
        split = row_split(src, row.get(split_column) if split_column else None, rel)
        images.append(_multi_image(base / rel, present, findings, split))
    if dropped and not images:
        raise UserError(f"{src}: all {dropped} images have an uncertain (-1) finding, and --uncertain drop leaves "
                        "them out; use --uncertain zero or one")  # fmt: skip
    return MultiLabelSource(images, findings)


def _flag(src: Path, line: int, column: str, text: str | None) -> int:
    """A finding cell: 1, 0, -1 (CheXpert writes 1.0/0.0/-1.0) or blank (= 0)."""
    text = (text or "").strip()
    if not text:
        return 0
    try:
        value = float(text)
    except ValueError:
        value = None
    if value not in (1.0, 0.0, -1.0):
        raise UserError(f"{src}: row {line}, column {column!r}: {text[:20]!r}; expected 1, 0, -1 (uncertain) or blank")
    return int(value)


def _manifest_base(src: Path, first_path: str | None) -> Path:
    """Paths are relative to the manifest's folder; CheXpert's train.csv starts them with that folder's
    own name (CheXpert-v1.0-small/train/...), so such paths are taken relative to the folder above."""
    base = src.parent
    first = Path((first_path or "").strip())
    if first.parts and first.parts[0] == base.name and not (base / first).exists():
        return base.parent
    return base
