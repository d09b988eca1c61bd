"""hpcgan/train/training_log.py: the metrics cadence (with the last step), metrics.jsonl and the
`latest` loss record, events.jsonl lines, a disabled log (ranks > 0) writing nothing, and close."""

import json
import time

import pytest

from hpcgan.runs.layout import RunPaths
from hpcgan.train.training_log import TrainingLog


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_logs_every_n_steps_and_at_the_last_step(tmp_path):
    log = TrainingLog(tmp_path, every=10, last_step=25, world_size=1, enabled=True)
    assert [s for s in range(1, 26) if log.should_log(s)] == [10, 20, 25]
    log.close()


def test_the_last_step_on_the_cadence_is_logged_once(tmp_path):
    log = TrainingLog(tmp_path, every=5, last_step=20, world_size=1, enabled=True)
    assert [s for s in range(1, 21) if log.should_log(s)] == [5, 10, 15, 20]
    log.close()


def test_every_record_goes_to_metrics_jsonl_in_order(tmp_path):
    log = TrainingLog(tmp_path, every=1, last_step=3, world_size=1, enabled=True)
    records = [{"step": 1, "loss_d": 0.5, "loss_g": 1.5}, {"step": 1, "fid": 40.0}, {"step": 2, "loss_d": 0.25}]
    for record in records:
        log.write(record)
    log.close()
    assert _lines(RunPaths(tmp_path).metrics) == records


def test_only_loss_records_become_latest(tmp_path):
    log = TrainingLog(tmp_path, every=1, last_step=3, world_size=1, enabled=True)
    assert log.latest == {}
    loss = {"step": 10, "loss_d": 0.7, "loss_g": 2.0}
    log.write(loss)
    log.write({"step": 10, "fid": 33.0})  # an evaluation record: logged, but not the latest losses
    assert log.latest == loss
    log.close()


def test_an_event_line_holds_name_step_time_world_size_and_the_facts(tmp_path):
    log = TrainingLog(tmp_path, every=1, last_step=3, world_size=4, enabled=True)
    before = time.time()
    log.event("stopped", 17, signal="SIGUSR2")
    after = time.time()
    log.close()
    (line,) = _lines(RunPaths(tmp_path).events)
    assert line["event"] == "stopped" and line["step"] == 17 and line["world_size"] == 4
    assert line["signal"] == "SIGUSR2"
    assert before <= line["time"] <= after


def test_events_and_metrics_go_to_separate_files(tmp_path):
    log = TrainingLog(tmp_path, every=1, last_step=3, world_size=1, enabled=True)
    log.event("start", 0)
    log.write({"step": 1, "loss_d": 1.0})
    log.close()
    paths = RunPaths(tmp_path)
    assert [r["event"] for r in _lines(paths.events)] == ["start"]
    assert [r["step"] for r in _lines(paths.metrics)] == [1]


def test_a_disabled_log_writes_no_files_but_keeps_latest(tmp_path):
    log = TrainingLog(tmp_path, every=1, last_step=3, world_size=2, enabled=False)
    log.write({"step": 1, "loss_d": 0.5})
    log.event("start", 0)
    log.close()
    assert list(tmp_path.iterdir()) == []
    assert log.latest == {"step": 1, "loss_d": 0.5}  # every rank has it (on_step, last_metrics)


def test_close_flushes_and_closes_both_files_and_is_safe_twice(tmp_path):
    log = TrainingLog(tmp_path, every=1, last_step=3, world_size=1, enabled=True)
    log.write({"step": 1, "loss_d": 0.5})
    log.event("completed", 1)
    metrics, events = log.metrics.handle, log.events.handle
    log.close()
    log.close()
    assert metrics.closed and events.closed
    assert len(_lines(RunPaths(tmp_path).metrics)) == 1 and len(_lines(RunPaths(tmp_path).events)) == 1


def test_a_reopened_log_appends_to_a_resumed_runs_files(tmp_path):
    first = TrainingLog(tmp_path, every=1, last_step=3, world_size=1, enabled=True)
    first.write({"step": 1, "loss_d": 0.5})
    first.close()
    second = TrainingLog(tmp_path, every=1, last_step=3, world_size=1, enabled=True)
    second.write({"step": 2, "loss_d": 0.4})
    second.close()
    assert [r["step"] for r in _lines(RunPaths(tmp_path).metrics)] == [1, 2]


def test_throughput_counts_this_ranks_images_times_the_world_size(tmp_path, monkeypatch):
    clock = iter([100.0, 102.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    log = TrainingLog(tmp_path, every=1, last_step=3, world_size=4, enabled=False)  # started at 100 s
    log.count_images(32)
    log.count_images(32)
    assert log.images_per_s() == pytest.approx(64 * 4 / 2.0)  # read at 102 s
