"""Live training curves: `train.loggers=tensorboard,wandb` sends every metrics.jsonl record to
TensorBoard and/or Weights & Biases while the run trains (rank 0 only; the other ranks get no
loggers). Everything goes under RUN/loggers/, and the names are those of `hpcgan report
--tensorboard` (hpcgan/runs/scalar_tags.py).

A requeued job or a rollback repeats steps that were logged already; neither tool may show a step
twice:
- TensorBoard: each start opens a writer with `purge_step` = the resumed step + 1, so TensorBoard
  hides what an earlier start logged past the checkpoint (the repeat logs it again).
- W&B cannot rewrite history, and offline each start writes its own RUN/loggers/wandb/offline-run-*
  folder under the same run id (RUN/loggers/wandb-run.json), which `wandb sync` uploads in order. So
  a step goes to W&B only if W&B does not have it yet: past the last step in its files
  (hpcgan/train/wandb_history.py), or in an online resume past the server's last step. Steps that
  W&B lost (a job killed before wandb wrote them) are sent from metrics.jsonl at the next start, up
  to the step it resumes at. A run that starts again from step 0 (--overwrite) gets a new W&B run.
- Within one process, after a rollback, no logger gets the repeated steps again: a logger only
  moves forward (the live curves show a step's first pass; metrics.jsonl keeps both).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from hpcgan.atomic import write_json
from hpcgan.errors import UserError
from hpcgan.runs.layout import RunPaths
from hpcgan.runs.logs import read_jsonl
from hpcgan.runs.records import read_json
from hpcgan.runs.scalar_tags import record_scalars
from hpcgan.train.rank_zero import rank0_decides
from hpcgan.train.wandb_history import logged_steps

LOGGERS = ("tensorboard", "wandb")  # config_schema.LoggerName mirrors it
WANDB_MODES = ("offline", "online", "disabled", "shared", "dryrun", "run")  # what wandb.init accepts
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}  # logger -> the package it needs (and the extra)


class Logger(Protocol):
    def log(self, step: int, scalars: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class Forward:
    """The records a logger may still take: past `floor` (what it has from before), or more tags at
    its latest step (a training record and an evaluation share a step); never a tag at a step it has."""

    def __init__(self, floor: int) -> None:
        self.last, self._tags_at_last = floor, {"*"}  # the floor's tags are unknown: all of them

    def admits(self, step: int, tags: Iterable[str]) -> bool:
        tags = set(tags)
        if step > self.last:
            self.last, self._tags_at_last = step, tags
            return True
        if step == self.last and "*" not in self._tags_at_last and not tags & self._tags_at_last:
            self._tags_at_last |= tags
            return True
        return False  # a step repeated by a rollback or a resume


class TensorBoardLogger:
    def __init__(self, folder: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # Hides whatever an earlier start of this run logged after the checkpoint it resumed from.
        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"), purge_step=start_step + 1)
        self.forward = Forward(start_step)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if not self.forward.admits(step, scalars):
            return
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # a job killed outright keeps what it logged (the writer flushes every 2 min)

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, folder: Path, start_step: int, name: str, config: dict[str, Any]) -> None:
        import wandb

        run_id = wandb_run_id(folder)
        floor = max(logged_steps(folder / "wandb", run_id), default=-1)
        if start_step == 0 and floor >= 0:  # a start from scratch (--overwrite, or killed before a checkpoint)
            run_id, floor = wandb_run_id(folder, new=True), -1
        # Offline by default: compute nodes often have no network (`wandb sync` uploads later).
        mode = os.environ.get("WANDB_MODE") or "offline"
        if mode not in WANDB_MODES:
            raise UserError(f"WANDB_MODE={mode} (train.loggers=wandb): expected one of {', '.join(WANDB_MODES)}")
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or "hpcgan", id=run_id, name=name, resume="allow",
                mode=mode, dir=str(folder), config=config, settings=wandb.Settings(console="off", silent=True),
            )  # fmt: skip
        except wandb.errors.Error as exc:  # online without network or without a login, ...
            raise UserError(f"train.loggers=wandb (WANDB_MODE={mode}): {exc}") from None
        if self.run.resumed:  # online: the server's history, which may hold steps no local file has
            floor = max(floor, int(self.run.starting_step) - 1)
        self.forward = Forward(floor)
        # What an earlier start wrote to metrics.jsonl but W&B lost (a job killed before wandb wrote
        # it), up to the step this start resumes at: sent now, or the history would have a gap there.
        for record in read_jsonl(RunPaths(folder.parent).metrics):
            if isinstance(record.get("step"), int) and floor < record["step"] <= start_step:
                self.log(record["step"], record_scalars(record))

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if self.forward.admits(step, scalars):
            self.run.log(scalars, step=step)  # the row of `step` is committed when a later step comes

    def close(self) -> None:
        import wandb

        self.run.finish()
        # finish() returns before wandb's service process has written the run's file; teardown waits
        # for it, so a job that ends now (then a requeue reads that file) loses no step.
        wandb.teardown()


class LiveLoggers:
    """The loggers of `train.loggers`, fed every metrics.jsonl record; none on ranks other than 0."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = loggers

    def log(self, record: dict[str, Any]) -> None:
        scalars = record_scalars(record)
        if scalars and isinstance(record.get("step"), int):
            for logger in self.loggers:
                logger.log(record["step"], scalars)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
        self.loggers = []


def parse_loggers(text: str) -> list[str]:
    """`train.loggers` as names, checked: one line naming the key and the choices, or the package to install."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in LOGGERS:
            raise UserError(f"train.loggers={text}: unknown logger {name!r}; expected a comma-separated list of "
                            f"{', '.join(LOGGERS)}")  # fmt: skip
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise UserError(f"train.loggers={name} needs the {PACKAGES[name]} package: pip install 'hpcgan[{name}]'")
    return list(dict.fromkeys(names))


def open_loggers(text: str, run_dir: Path, start_step: int, config: dict[str, Any], enabled: bool) -> LiveLoggers:
    """Every rank calls this; rank 0 (`enabled`) opens the loggers, and when it cannot (a missing
    package, W&B refusing to start) every rank raises the same one-line error, so none waits in a
    collective for it. `start_step`: the step the run starts or resumes at."""
    names = parse_loggers(text)
    opened: list[Logger] = []

    def open_on_rank0() -> None:
        if not enabled:
            return
        folder = RunPaths(Path(run_dir)).loggers
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            if name == "tensorboard":
                opened.append(TensorBoardLogger(folder, start_step))
            else:
                opened.append(WandbLogger(folder, start_step, Path(run_dir).resolve().name, config))

    if names:
        rank0_decides(open_on_rank0)
    return LiveLoggers(opened)


def wandb_run_id(folder: Path, new: bool = False) -> str:
    """The run's W&B id, kept in RUN/loggers/wandb-run.json so that every start of the run (a
    requeue, a resume) logs to the same W&B run; made on the first start, or `new` for a run that
    starts again from step 0 (its earlier W&B run holds steps of a pass that no longer exists)."""
    path = folder / "wandb-run.json"
    stored = read_json(path).get("id")
    if isinstance(stored, str) and stored and not new:
        return stored
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    write_json(path, {"id": run_id})
    return run_id
