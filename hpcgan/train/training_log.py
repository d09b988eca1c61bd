"""What the trainer writes down for people and for `hpcgan status`/`report`: metrics.jsonl every
`train.log_every` steps (and at the last), events.jsonl for what happened to the run; every
metrics record also goes to the live loggers of `train.loggers` (hpcgan/train/live_loggers.py). Rank 0
writes; the other ranks hold a log that writes nothing, so callers never ask for their rank."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hpcgan.runs.layout import RunPaths
from hpcgan.runs.logs import JsonlLog
from hpcgan.train.live_loggers import LiveLoggers


class TrainingLog:
    def __init__(self, run_dir: Path, every: int, last_step: int, world_size: int, enabled: bool,
                 live: LiveLoggers | None = None) -> None:  # fmt: skip
        paths = RunPaths(run_dir)
        self.metrics = JsonlLog(paths.metrics, enabled)
        self.live = live or LiveLoggers([])
        self.events = JsonlLog(paths.events, enabled)
        self.every, self.last_step, self.world_size = every, last_step, world_size
        self.latest: dict[str, Any] = {}  # the latest logged record (every rank has it)
        self._started, self._images = time.perf_counter(), 0

    def should_log(self, step: int) -> bool:
        return step % self.every == 0 or step == self.last_step

    def count_images(self, n: int) -> None:
        """Images this rank trained on since the loop started (for the throughput)."""
        self._images += n

    def images_per_s(self) -> float:
        return self._images * self.world_size / (time.perf_counter() - self._started)

    def write(self, record: dict[str, Any]) -> None:
        self.metrics.write(record)
        self.live.log(record)
        if "loss_d" in record:
            self.latest = record

    def event(self, name: str, step: int, **facts: Any) -> None:
        """A line in events.jsonl (status and the report's timelines read them)."""
        self.events.write({"event": name, "step": step, "time": time.time(), "world_size": self.world_size, **facts})

    def close(self) -> None:
        self.metrics.close()
        self.events.close()
        self.live.close()
