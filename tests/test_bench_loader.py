"""Smoke test of `python -m hpcgan.bench loader` at tiny sizes (real X-rays if present, else phantoms)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

RATES = ("decode", "shard_warm", "shard_cold", "perfile_warm", "perfile_cold")
RATIOS = ("speedup", "speedup_cold", "decode_fraction")
FLAGS = ("meets_speedup_warm", "meets_speedup_cold", "meets_decode_fraction")


def test_loader_bench_prints_json_with_positive_rates(tmp_path):
    command = [sys.executable, "-m", "hpcgan.bench", "loader", "--n", "64", "--sizes", "64", "--batch", "16"]
    command += ["--min-seconds", "0.2", "--shard-size", "32", "--shuffle-buffer", "64", "--workdir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr

    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["bench"] == "loader"
    assert {"data", "workers", "batch", "default_format", "targets"} <= summary.keys()
    assert [r["format"] for r in summary["results"]] == ["png", "jpeg", "raw"]
    for result in summary["results"]:
        assert result["size"] == 64 and result["images"] == 64 and result["bytes_per_image"] > 0
        assert all(result[key] > 0 for key in RATES + RATIOS), result
        assert all(isinstance(result[key], bool) for key in FLAGS)
        assert result["speedup"] == pytest.approx(result["shard_warm"] / result["perfile_warm"], rel=0.01)
    assert (tmp_path / "kermany-cxr-first64.csv").exists() or "phantom" in summary["data"]
