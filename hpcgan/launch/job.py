"""The function a SLURM job runs on every task: one rank of a training run, requeue-aware.

Preemption protocol (the notes in slurm/README.md tell the story end to end):
1. submitit's USR2 handler is replaced by one that only records the signal (SIGTERM too).
2. At the next step boundary all ranks agree on it (an all-reduce) and save a checkpoint together.
3. On USR2, rank 0 hands over to submitit's own handler, which calls `checkpoint()` below (nothing
   left to save: it returns this same job), runs `scontrol requeue` and exits; the other ranks return.
4. The requeued job runs `__call__` again on the same run dir and resumes from that checkpoint.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import submitit

from hpcgan.launch.rendezvous import export_distributed_env


class TrainJob(submitit.helpers.Checkpointable):
    def __init__(self, config: dict[str, Any], run_dir: str, resume: str = "auto") -> None:
        self.config, self.run_dir, self.resume = config, run_dir, resume

    def __call__(self) -> dict[str, Any]:
        from hpcgan.train.config import RunConfig
        from hpcgan.train.process_exit import exit_now_at_interpreter_exit
        from hpcgan.train.stop_signals import StopSignals
        from hpcgan.train.trainer import Trainer

        dist = export_distributed_env()
        submitit_handler = signal.getsignal(signal.SIGUSR2)
        with StopSignals() as stop:
            trainer = Trainer(RunConfig.from_dict(self.config), Path(self.run_dir), self.resume)
            try:
                outcome = trainer.train(stop=stop)
            finally:
                trainer.close()  # every rank leaves the process group before the process ends
        result = {"outcome": outcome, "step": trainer.step, "rank": dist.rank, "world_size": dist.world_size}
        if outcome == "completed":
            # Done: a time-limit USR2 arriving while the process exits (a run that finished in its
            # slot's last seconds) would kill it by signal and SLURM would record FAILED 12:0.
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        if dist.world_size > 1 or outcome == "SIGUSR2":
            # After submitit wrote the result (hpcgan/train/process_exit.py). On USR2 submitit's
            # handler requeues and then exits with -1: a clean checkpoint-and-requeue on one rank
            # would read as a FAILED step in sacct (127:0 seen) instead of the 0 it is.
            exit_now_at_interpreter_exit(0)
        if outcome == "SIGUSR2" and dist.rank == 0 and callable(submitit_handler):
            submitit_handler(signal.SIGUSR2, None)  # checkpoint() + scontrol requeue + exit
        return result

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on rank 0 after the trainer saved: requeue this same job (resume=auto
        finds the checkpoint just written)."""
        return submitit.helpers.DelayedSubmission(TrainJob(self.config, self.run_dir, "auto"))
