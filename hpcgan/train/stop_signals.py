"""Stop requests from the scheduler, recorded by signal handlers and acted on at a step boundary.

SLURM sends SIGUSR2 before a time limit or a preemption (`--signal=USR2@delay`, which submitit sets)
and SIGTERM on `scontrol requeue`, `scancel` or at the end of KillWait. The handlers only record the
signal: saving a checkpoint inside a handler can interrupt a collective or a half-written file. The
trainer reads `received` at the next step boundary, all ranks agree, and they save together.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)
REQUEUE_EXIT_CODE = 3  # `python -m hpcgan.train` after a USR2 checkpoint: "requeue me" (slurm/train.sbatch)


class StopSignals:
    """Install with `with StopSignals() as stop:`; the previous handlers come back on exit."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: signal.Signals | None = None  # the first stop signal seen
        self.previous: dict[signal.Signals, Any] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self.received is None:
            self.received = signal.Signals(signum)

    def __enter__(self) -> StopSignals:
        for sig in self.signals:
            self.previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
