"""`python -m hpcgan.bench fid` at a tiny size: the table, one JSON line with speedup and memory
growth, and a one-line error for bad options."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_fid_bench_prints_speedup_and_memory_for_each_size():
    cmd = [sys.executable, "-m", "hpcgan.bench", "fid", "--sizes", "64,256", "--batch-size", "32", "--resolution", "32"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["bench"] == "fid" and result["sizes"] == [64, 256] and result["speedup"] > 0
    expected = {(loop, n) for loop in ("ours", "torchmetrics") for n in (64, 256)}
    assert {(r["loop"], r["n"]) for r in result["rows"]} == expected
    assert all(r["images_per_s"] > 0 for r in result["rows"])
    assert "speedup" in proc.stderr and "FID + KID update loops" in proc.stderr


def test_fid_bench_bad_sizes_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "hpcgan.bench", "fid", "--sizes", "many"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--sizes many" in proc.stderr
