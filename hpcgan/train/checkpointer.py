"""The trainer's checkpoints: when to save, the save itself (rank 0 writes, every rank learns
whether it worked), which checkpoint to resume from, and where a divergence rolls back to."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

from hpcgan.errors import UserError
from hpcgan.runs.checkpoints import committed, move_aside, remove_orphaned_temps
from hpcgan.runs.layout import TRAINING_OUTPUTS, RunPaths
from hpcgan.train.checkpoint import CheckpointWriteError, latest_valid, load_checkpoint, save_best, save_checkpoint
from hpcgan.train.rank_zero import rank0_decides


class Checkpointer:
    def __init__(self, run_dir: Path, every: int, keep: int) -> None:
        self.paths = RunPaths(run_dir)
        self.every, self.keep = every, keep
        self.last_saved = -1  # the step of the newest checkpoint this run saved or resumed from
        self.rollback_path: Path | None = None  # that checkpoint's file
        self.initial_state: dict[str, Any] | None = None  # the rollback target before the first checkpoint
        self.save_failed = False  # the latest save failed (the previous checkpoint is kept)

    def keep_initial_state(self, state: dict[str, Any]) -> None:
        """Before the first checkpoint, a divergence rolls back to this (a CPU copy: the training
        state moves on in place)."""
        self.initial_state = _to_cpu(state)

    @property
    def run_dir(self) -> Path:
        return self.paths.root

    def requested(self) -> bool:
        """`touch RUN/CHECKPOINT_NOW` asks for a checkpoint at the next step (rank 0 looks)."""
        return self.paths.checkpoint_request.exists()

    def should_save(self, step: int, requested: bool, stopping: bool) -> bool:
        return requested or stopping or bool(self.every and step % self.every == 0)

    def prepare(self, resume: str, overwrite: bool) -> None:
        """Rank 0, holding the run dir: temp files of killed saves go; a fresh start (--resume none)
        never trains into another run's checkpoints: refused, or with --overwrite moved aside."""

        def prepare_on_rank0() -> None:
            remove_orphaned_temps(self.run_dir)
            existing = committed(self.run_dir)
            if resume != "none" or not existing:
                return
            if not overwrite:
                raise UserError(f"--run-dir {self.run_dir}: holds checkpoints up to {existing[0].name}; use "
                                "--resume auto to continue it, another --run-dir, or --overwrite to move them aside")
            aside = move_aside(self.run_dir, TRAINING_OUTPUTS)
            warnings.warn(f"--overwrite: the earlier run's checkpoints and logs moved to {aside}", stacklevel=1)

        rank0_decides(prepare_on_rank0)

    def resume_state(
        self, resume: str, config_hash: str, accepted: Collection[str] = ()
    ) -> tuple[Path, dict[str, Any]] | None:
        """The checkpoint to resume from (`auto`: the newest valid one, `none`, or a file) and its
        state, checked against this run's configuration (`config_hash`, or one of the `accepted`
        spellings of it); None for a fresh start."""
        if resume == "none":
            return None
        if resume == "auto":
            # Rank 0 picks and every rank loads that file: a node whose view of a shared file
            # system lags must not pick an older one.
            choice = rank0_decides(lambda: str(found[0]) if (found := latest_valid(self.run_dir)) else None)
            if choice is None:
                return None
            path = Path(choice)
        else:
            path = Path(resume)
        state = load_checkpoint(path)
        if state["config_hash"] != config_hash and state["config_hash"] not in accepted:
            raise UserError(f"{path}: saved with another configuration (hash {state['config_hash']}, this run "
                            f"{config_hash}); use a new --run-dir or the same settings")  # fmt: skip
        self.last_saved, self.rollback_path = int(state["step"]), path
        return path, state

    def rollback_target(self) -> tuple[str, dict[str, Any]]:
        """(what, state): the checkpoint this run last saved or resumed from (the same file on
        every rank), or the initial weights before the first."""
        if self.rollback_path is not None:
            return str(self.rollback_path), load_checkpoint(self.rollback_path)
        assert self.initial_state is not None, "no rollback target: neither a checkpoint nor the initial state"
        return "the initial weights", self.initial_state

    def save(self, step: int, state: dict[str, Any]) -> bool:
        """All ranks call this together; rank 0 writes. False when the write failed: the previous
        checkpoint stays the rollback and resume point (without one the run stops: one line)."""

        def write() -> str | None:
            try:
                save_checkpoint(self.run_dir, step, state, self.keep)
            except CheckpointWriteError as exc:
                return str(exc)
            self.paths.checkpoint_request.unlink(missing_ok=True)
            return None

        failure = rank0_decides(write)
        if failure is not None:
            if self.rollback_path is None:
                raise UserError(f"{failure}; no checkpoint could be saved, stopping")
            warnings.warn(f"{failure}; the previous checkpoint ({self.rollback_path}) is kept, training goes on",
                          stacklevel=1)  # fmt: skip
            self.save_failed = True
            return False
        self.save_failed = False
        self.last_saved, self.rollback_path = step, self.paths.checkpoint(step)
        self.initial_state = None  # rollbacks now go to a checkpoint
        return True

    def save_best(self, step: int, state: dict[str, Any], fid: float) -> None:
        """checkpoints/best.pt (rank 0 writes); a failure is a warning, as best.pt is a convenience."""

        def write_best() -> None:
            try:
                save_best(self.run_dir, step, state, fid)
            except CheckpointWriteError as exc:
                warnings.warn(f"{exc}; the earlier best.pt is kept", stacklevel=1)

        rank0_decides(write_best)


def _to_cpu(state: Any) -> Any:
    """A deep copy with every tensor on the CPU (the rollback target before the first checkpoint)."""
    if torch.is_tensor(state):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_to_cpu(v) for v in state)
    return copy.deepcopy(state)
