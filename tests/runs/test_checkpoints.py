"""hpcgan/runs/checkpoints.py: committed checkpoints, their markers, pruning, moving aside."""

import json

import pytest

from hpcgan.errors import UserError
from hpcgan.runs.checkpoints import committed, move_aside, prune, read_marker, remove_orphaned_temps, step_of
from hpcgan.runs.layout import RunPaths


def _fake_checkpoint(run, step, payload=b"weights"):
    path = RunPaths(run).checkpoint(step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    path.with_suffix(".json").write_text(json.dumps({"step": step, "bytes": len(payload), "sha256": "x"}))
    return path


def test_only_checkpoints_with_a_marker_count_newest_first(tmp_path):
    for step in (5, 15, 10):
        _fake_checkpoint(tmp_path, step)
    RunPaths(tmp_path).checkpoint(20).write_bytes(b"half written, never committed")
    assert [step_of(p) for p in committed(tmp_path)] == [15, 10, 5]


def test_prune_keeps_the_newest_intact_and_never_touches_newer_steps(tmp_path):
    for step in (1, 2, 3, 4, 9):
        _fake_checkpoint(tmp_path, step)
    RunPaths(tmp_path).checkpoint(3).write_bytes(b"x")  # damaged: its size no longer matches
    deleted = prune(tmp_path, newest=4, keep=2)
    assert sorted(step_of(p) for p in deleted) == [1]  # 4 and 2 are the two intact ones; 3 is damaged
    assert [step_of(p) for p in committed(tmp_path)] == [9, 4, 3, 2]


def test_a_marker_that_is_not_one_is_a_one_line_error(tmp_path):
    marker = tmp_path / "step-0000001.json"
    marker.write_text('{"bytes": "many"}')
    with pytest.raises(UserError, match="not a commit marker"):
        read_marker(marker)


def test_temps_of_killed_saves_go_and_move_aside_keeps_the_old_run(tmp_path):
    _fake_checkpoint(tmp_path, 7)
    temp = RunPaths(tmp_path).checkpoints / ".step-0000008.pt.123.tmp"
    temp.write_bytes(b"partial")
    assert remove_orphaned_temps(tmp_path) == [temp]
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    aside = move_aside(tmp_path, ("checkpoints", "metrics.jsonl", "samples"))
    assert (aside / "checkpoints" / "step-0000007.pt").is_file() and (aside / "metrics.jsonl").is_file()
    assert committed(tmp_path) == [] and move_aside(tmp_path) is None
