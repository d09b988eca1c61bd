"""hpcgan/train/stop_signals.py: a real signal sent to this process is recorded (the first one wins)
and the previous handlers come back on exit."""

import os
import signal
import time

import pytest

from hpcgan.train.stop_signals import STOP_SIGNALS, StopSignals


def _deliver(sig):
    """Send `sig` to this process and let the interpreter run the Python-level handler."""
    os.kill(os.getpid(), sig)
    time.sleep(0.001)  # the handler runs between bytecodes of the main thread, by now at the latest


@pytest.fixture
def own_handlers():
    """Known handlers on both signals before each test, and the originals back after it."""
    originals = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    seen = []
    handlers = {sig: (lambda signum, frame, sig=sig: seen.append(sig)) for sig in STOP_SIGNALS}
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    yield handlers, seen
    for sig, handler in originals.items():
        signal.signal(sig, handler)


def test_nothing_is_received_before_a_signal(own_handlers):
    with StopSignals() as stop:
        assert stop.received is None


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM])
def test_a_real_signal_is_recorded_not_acted_on(own_handlers, sig):
    _, seen = own_handlers
    with StopSignals() as stop:
        _deliver(sig)
        assert stop.received is sig
    assert seen == []  # the previous handler did not run: the signal was ours


def test_the_first_signal_wins(own_handlers):
    with StopSignals() as stop:
        _deliver(signal.SIGUSR2)
        _deliver(signal.SIGTERM)
    assert stop.received is signal.SIGUSR2


def test_the_previous_handlers_come_back_on_exit(own_handlers):
    handlers, seen = own_handlers
    with StopSignals():
        assert signal.getsignal(signal.SIGUSR2) not in (handlers[signal.SIGUSR2], signal.SIG_DFL)
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == handlers
    _deliver(signal.SIGTERM)
    assert seen == [signal.SIGTERM]


def test_the_previous_handlers_come_back_after_an_exception(own_handlers):
    handlers, _ = own_handlers
    with pytest.raises(RuntimeError), StopSignals():
        raise RuntimeError("a failed step")
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == handlers


def test_only_the_chosen_signals_are_handled(own_handlers):
    handlers, seen = own_handlers
    with StopSignals(signals=(signal.SIGUSR2,)) as stop:
        assert signal.getsignal(signal.SIGTERM) is handlers[signal.SIGTERM]
        _deliver(signal.SIGTERM)
    assert stop.received is None and seen == [signal.SIGTERM]
