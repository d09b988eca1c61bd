"""`hpcgan inspect` on a multi-label shard set: counts per finding, the most common label sets, a
contact sheet row per class, no false problem; and a damaged `.hot` member reported as one line."""

from __future__ import annotations

import io
import itertools
import tarfile

from PIL import Image

from hpcgan.data.index import ShardSet
from hpcgan.data.inspect import summarise
from hpcgan.data.label_sets import NO_FINDING
from tests.conftest import run_cli
from tests.data.test_multi_label_sources import SHARD, make_nih

FINDINGS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass"]


def _rows() -> list[tuple[str, str]]:
    """21 images in 14 distinct label sets (so the top-10 table is cut), the empty set most common."""
    sets = [NO_FINDING] * 4 + ["Effusion"] * 3 + ["Cardiomegaly|Effusion"] * 2
    sets += ["|".join(pair) for pair in itertools.combinations(FINDINGS, 2)]  # 10 pairs, one image each
    sets += ["Mass", "Effusion|Infiltration|Mass"]
    return [(f"{i:03d}.png", labels) for i, labels in enumerate(sets)]


def test_inspect_shows_findings_top_label_sets_and_a_row_per_class(tmp_path):
    src, out = make_nih(tmp_path / "nih", _rows(), test=()), tmp_path / "out"
    run_cli("shard", src, out, *SHARD)
    sheet = tmp_path / "sheet.png"
    proc = run_cli("inspect", out, "--sheet", sheet, "--per-class", "3")
    assert "problem" not in proc.stderr  # per-finding index histograms agree with the per-finding counts
    findings_part, sets_part = proc.stderr.split("most common label sets")
    finding_rows = _rows_of(findings_part)
    assert finding_rows["images"] == ["21"]
    # An image counts under each of its findings: Effusion is in 3 + 2 + 4 pairs + 1 triple = 10 of 21.
    assert finding_rows["Effusion"] == ["10 (48%)"] and finding_rows[NO_FINDING] == ["4 (19%)"]
    assert finding_rows["Mass"] == ["6 (29%)"]

    assert sets_part.startswith(" (top 10 of 14)")
    set_rows = _rows_of(sets_part)
    assert list(set_rows) == [NO_FINDING, "Cardiomegaly|Effusion", "Effusion", "Atelectasis|Cardiomegaly",
                              "Atelectasis|Effusion", "Atelectasis|Infiltration", "Atelectasis|Mass",
                              "Cardiomegaly|Infiltration", "Cardiomegaly|Mass", "Effusion|Infiltration"]  # fmt: skip
    assert set_rows["Cardiomegaly|Effusion"] == ["3 (14%)"]

    shard_set = ShardSet.open(out)
    with Image.open(sheet) as img:
        assert img.height == len(shard_set.classes) * 128 == (len(FINDINGS) + 1) * 128
    (summary,) = summarise(shard_set)
    assert summary.histogram == shard_set.index["splits"]["train"]["histogram"]
    assert summary.combinations == shard_set.index["splits"]["train"]["combinations"]


def _rows_of(table: str) -> dict[str, list[str]]:
    """A rich table's body rows: first cell -> the other cells."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


def test_a_damaged_label_set_is_a_problem_line(tmp_path):
    src, out = make_nih(tmp_path / "nih", _rows()[:10], test=()), tmp_path / "out"
    run_cli("shard", src, out, *SHARD)
    shard = out / "train-000000.tar"
    members = []
    with tarfile.open(shard) as tar:
        for info in tar:
            data = tar.extractfile(info).read()
            if info.name.endswith(".hot") and not any(m[0].name.endswith(".hot") for m in members):
                data = b"0000"  # no class at all, not even No Finding: not a label set
            members.append((info, data))
    with tarfile.open(shard, "w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    proc = run_cli("inspect", out, "--sheet", tmp_path / "sheet.png", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "label set (.hot) is not 4 0/1 flags" in proc.stderr.replace("\n", " ")
