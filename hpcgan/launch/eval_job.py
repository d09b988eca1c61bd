"""The function one element of an eval array runs on every task: all ranks evaluate one checkpoint
together (each generates a share of the images), rank 0 appends the result to RUN/eval.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import submitit

from hpcgan.launch.rendezvous import export_distributed_env


class EvalJob(submitit.helpers.Checkpointable):
    """Checkpointable with submitit's default `checkpoint()` (resubmit this same job): evaluation is
    deterministic per (checkpoint, n), so a preempted or timed-out element is requeued and simply run
    again from the start, with the same result. A plain callable would instead fail on a time limit."""

    def __init__(
        self, run_dir: str, checkpoint_file: str, n: int, split: str, extractor: str, weights: str | None
    ) -> None:
        # Not `self.checkpoint`: that is submitit's requeue hook, Checkpointable.checkpoint().
        self.run_dir, self.checkpoint_file = run_dir, checkpoint_file  # a file name in RUN/checkpoints
        self.n, self.split, self.extractor, self.weights = n, split, extractor, weights

    def __call__(self) -> list[dict[str, Any]]:
        import torch.distributed as dist

        from hpcgan.trained.evaluate import EvalOptions, evaluate_run

        # The port comes from the element's job id, so elements sharing a node don't collide.
        env = export_distributed_env()
        if env.world_size > 1:
            dist.init_process_group("gloo")  # the statistics are CPU tensors (see cli/eval_command.py)
        try:
            options = EvalOptions(checkpoints=self.checkpoint_file, n=self.n, split=self.split,
                                  extractor=self.extractor, weights=self.weights)  # fmt: skip
            # The result goes to the job's log as the line eval.jsonl gets (the words are the CLI's).
            return evaluate_run(Path(self.run_dir), options, on_result=lambda r: print(json.dumps(r), flush=True))
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
