"""hpcgan/runs/records.py and logs.py: one policy for a run's config, tolerant log reading."""

import json

import pytest

from hpcgan.errors import UserError
from hpcgan.runs.logs import JsonlLog, read_jsonl
from hpcgan.runs.records import read_job_record, read_run_config


def test_a_good_config_is_returned(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"data": "shards/x", "gan": "dcgan64"}))
    assert read_run_config(tmp_path)["data"] == "shards/x"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not a run directory"), ("{oops", "unreadable run config"), ("[1, 2]", "not a run config"),
     ('{"gan": "dcgan64"}', "not a run config"), ('{"data": 3}', "not a run config")],
)  # fmt: skip
def test_a_bad_config_is_one_line_naming_the_file(tmp_path, content, message):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    with pytest.raises(UserError, match=message) as err:
        read_run_config(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_a_missing_or_damaged_job_record_reads_as_empty(tmp_path):
    assert read_job_record(tmp_path) == {}
    (tmp_path / "job.json").write_text("{cut")
    assert read_job_record(tmp_path) == {}


def test_logs_round_trip_and_a_cut_line_is_skipped(tmp_path):
    log = JsonlLog(tmp_path / "m.jsonl")
    log.write({"step": 1})
    log.write({"step": 2})
    log.close()
    with (tmp_path / "m.jsonl").open("a") as handle:
        handle.write('{"step": 3, "lo')  # a kill in the middle of a line
    assert read_jsonl(tmp_path / "m.jsonl") == [{"step": 1}, {"step": 2}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_a_disabled_log_writes_nothing(tmp_path):
    log = JsonlLog(tmp_path / "m.jsonl", enabled=False)
    log.write({"step": 1})
    log.close()
    assert not (tmp_path / "m.jsonl").exists()
