"""hpcgan/train/checkpointer.py: cadence, saving, resuming and the rollback target, with real files."""

import contextlib
import resource
import signal
import warnings

import pytest
import torch

from hpcgan.errors import UserError
from hpcgan.runs.layout import RunPaths
from hpcgan.train.checkpoint import save_checkpoint
from hpcgan.train.checkpointer import Checkpointer


def _state(step, config_hash="abc"):
    return {"step": step, "config_hash": config_hash, "w": torch.full((3,), float(step))}


def test_saves_on_its_cadence_on_request_and_on_a_stop(tmp_path):
    c = Checkpointer(tmp_path, every=10, keep=2)
    assert [s for s in range(1, 31) if c.should_save(s, False, False)] == [10, 20, 30]
    assert c.should_save(3, True, False) and c.should_save(3, False, True)
    assert not Checkpointer(tmp_path, every=0, keep=2).should_save(10, False, False)


def test_a_save_becomes_the_rollback_target_and_clears_the_request(tmp_path):
    c = Checkpointer(tmp_path, every=5, keep=2)
    c.keep_initial_state(_state(0))
    assert c.rollback_target()[0] == "the initial weights"
    RunPaths(tmp_path).checkpoint_request.touch()
    assert c.save(5, _state(5))
    what, state = c.rollback_target()
    assert what.endswith("step-0000005.pt") and state["w"][0] == 5 and c.last_saved == 5
    assert not RunPaths(tmp_path).checkpoint_request.exists() and c.initial_state is None


def test_the_initial_state_is_a_copy_that_training_cannot_change(tmp_path):
    c = Checkpointer(tmp_path, every=5, keep=2)
    live = _state(0)
    c.keep_initial_state(live)
    live["w"].add_(1)  # training moves on in place
    assert c.rollback_target()[1]["w"].tolist() == [0.0, 0.0, 0.0]


@contextlib.contextmanager
def _files_limited_to(limit):
    """Writes past `limit` bytes fail with EFBIG, as a full disk fails them with ENOSPC."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write returns the error instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _big_state(step):
    return {"step": step, "config_hash": "abc", "w": torch.zeros(256 * 1024)}  # 1 MiB


def test_a_failed_first_save_stops_a_failed_later_one_warns(tmp_path):
    c = Checkpointer(tmp_path, every=5, keep=2)
    with _files_limited_to(64 * 1024), pytest.raises(UserError, match="no checkpoint could be saved"):
        c.save(5, _big_state(5))
    assert c.save(5, _big_state(5))
    with _files_limited_to(64 * 1024), pytest.warns(UserWarning, match="previous checkpoint"):
        assert not c.save(10, _big_state(10))
    assert c.save_failed and c.rollback_target()[1]["step"] == 5
    assert not list(RunPaths(tmp_path).checkpoints.glob(".*.tmp"))  # the failed write left no temp file


def test_resume_auto_takes_the_newest_valid_and_checks_the_configuration(tmp_path):
    for step in (3, 6):
        save_checkpoint(tmp_path, step, _state(step), keep=5)
    RunPaths(tmp_path).checkpoint(6).write_bytes(b"damaged")
    c = Checkpointer(tmp_path, every=3, keep=5)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        path, state = c.resume_state("auto", "abc")
    assert state["step"] == 3 and c.last_saved == 3 and c.rollback_path == path
    assert Checkpointer(tmp_path, 3, 5).resume_state("none", "abc") is None
    with pytest.raises(UserError, match="another configuration"):
        Checkpointer(tmp_path, 3, 5).resume_state(str(RunPaths(tmp_path).checkpoint(3)), "different")


def test_a_fresh_start_refuses_an_earlier_runs_checkpoints_unless_overwrite(tmp_path):
    save_checkpoint(tmp_path, 4, _state(4), keep=5)
    with pytest.raises(UserError, match="--overwrite"):
        Checkpointer(tmp_path, 4, 5).prepare("none", overwrite=False)
    with pytest.warns(UserWarning, match="moved to"):
        Checkpointer(tmp_path, 4, 5).prepare("none", overwrite=True)
    assert not RunPaths(tmp_path).checkpoint(4).exists()
    assert list(tmp_path.glob("replaced-*/checkpoints/step-0000004.pt"))
