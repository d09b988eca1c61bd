"""`hpcgan demo` (the README's first command) runs every stage end to end, here at a small size."""

import json

from PIL import Image

from tests.conftest import run_cli


def test_demo_shards_inspects_loads_trains_and_writes_sample_grids(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", out, "--n", "160", "--steps", "12", "--width", "8", threads=1)
    for stage in ("2/4 inspect", "3/4 loader", "4/4 train: r3gan64 12 steps", "demo finished"):
        assert stage in proc.stderr, proc.stderr
    run_dir = out / "runs" / "r3gan64"
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    assert [g.name for g in grids] == ["step-000004.png", "step-000008.png", "step-000012.png"]
    assert Image.open(grids[-1]).mode == "L" and (out / "contact_sheet.png").exists()
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 12
    assert (run_dir / "checkpoints" / "step-0000012.json").exists()
    again = run_cli("demo", "--out", out, "--n", "160", "--steps", "12", "--width", "8", threads=1)
    assert "had already finished its 12 steps" in again.stderr  # a re-run resumes, nothing redone


def test_an_unknown_demo_preset_is_one_line_before_anything_is_written(tmp_path):
    from tests.conftest import assert_one_line_error

    out = tmp_path / "demo"
    assert_one_line_error(run_cli("demo", "--out", out, "--gan", "stylegan9", check=False), "--gan stylegan9")
    assert not out.exists()
