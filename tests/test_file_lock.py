"""hpcgan/file_lock.py: an exclusive lock held by another real process keeps us out (at once, or
after the timeout), is ours once that process lets go, and its file goes on release."""

import subprocess
import sys
import threading
import time

import pytest

from hpcgan.file_lock import LockHeld, exclusive_lock

HOLDER = """
import sys
from hpcgan.file_lock import exclusive_lock
with exclusive_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()  # hold until the test writes a line (or closes stdin)
print("released", flush=True)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock on tmp_path/lock until `release()` is called."""
    path = tmp_path / "lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"

    def release():
        if proc.poll() is None:
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "released"
            proc.wait(timeout=10)

    yield path, release
    release()
    proc.stdin.close()
    proc.stdout.close()


def test_a_lock_held_by_another_process_fails_at_once_without_a_timeout(holder):
    path, _ = holder
    started = time.monotonic()
    with pytest.raises(LockHeld, match="lock"), exclusive_lock(path):
        pytest.fail("entered a lock another process holds")
    assert time.monotonic() - started < 1.0


def test_a_timeout_waits_then_gives_lock_held(holder):
    path, _ = holder
    started = time.monotonic()
    with pytest.raises(LockHeld), exclusive_lock(path, timeout=0.3):
        pytest.fail("entered a lock another process holds")
    assert 0.3 <= time.monotonic() - started < 3.0


def test_the_lock_is_ours_once_the_other_process_lets_go(holder):
    path, release = holder
    release()
    with exclusive_lock(path):
        assert path.exists()


def test_a_waiting_locker_gets_the_lock_when_it_is_released_within_the_timeout(holder):
    path, release = holder
    timer = threading.Timer(0.2, release)
    timer.start()
    try:
        with exclusive_lock(path, timeout=10):
            entered = True
    finally:
        timer.join()
    assert entered


def test_the_lock_file_goes_on_release(tmp_path):
    path = tmp_path / "lock"
    with exclusive_lock(path):
        assert path.exists()
    assert not path.exists()


def test_the_lock_file_goes_after_an_exception_too(tmp_path):
    path = tmp_path / "lock"
    with pytest.raises(RuntimeError), exclusive_lock(path):
        raise RuntimeError("the writer failed")
    assert not path.exists()
    with exclusive_lock(path, timeout=0):  # and the lock is free again
        pass


def test_a_released_lock_can_be_taken_again_by_this_process(tmp_path):
    path = tmp_path / "lock"
    for _ in range(3):
        with exclusive_lock(path):
            pass
