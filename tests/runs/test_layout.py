"""hpcgan/runs/layout.py: where a run's files are, and which folders are runs."""

from pathlib import Path

from hpcgan.runs.layout import RunPaths, find_runs, is_run, run_dir_of_checkpoint


def test_paths_name_the_documented_files():
    p = RunPaths(Path("/r"))
    assert p.config == Path("/r/config.json") and p.metrics == Path("/r/metrics.jsonl")
    assert p.checkpoint(12) == Path("/r/checkpoints/step-0000012.pt")
    assert p.sample_grid(12) == Path("/r/samples/step-000012.png")
    assert p.best_checkpoint == Path("/r/checkpoints/best.pt") and p.checkpoint_request.name == "CHECKPOINT_NOW"


def test_find_runs_sees_a_run_its_children_and_a_sweeps_grandchildren(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text("{}")
    (tmp_path / "sweep" / "lr-1").mkdir(parents=True)
    (tmp_path / "sweep" / "lr-1" / "job.json").write_text("{}")  # submitted, not started yet
    (tmp_path / "empty").mkdir()
    assert find_runs(tmp_path) == [tmp_path / "a", tmp_path / "sweep" / "lr-1"]
    assert find_runs(tmp_path / "a") == [tmp_path / "a"]
    assert not is_run(tmp_path / "empty")


def test_a_checkpoint_knows_its_run_dir():
    assert run_dir_of_checkpoint(Path("/r/checkpoints/step-0000001.pt")) == Path("/r")
    assert run_dir_of_checkpoint(Path("/elsewhere/g.pt")) == Path("/elsewhere")
