"""Where a run directory keeps each of its files. Every module that reads or writes a run dir
takes its paths from here, so the layout is written down once.

    RUN/config.json            the resolved configuration (written by the trainer's rank 0)
    RUN/metrics.jsonl          one record per logged step, and the training-time evaluations
    RUN/events.jsonl           start, stopped, diverged, completed
    RUN/eval.jsonl             `hpcgan eval` results, one per checkpoint evaluated
    RUN/samples/step-N.png     sample grids of the fixed latents
    RUN/checkpoints/           step-N.pt with its commit marker step-N.json, best.pt
    RUN/loggers/               live TensorBoard / W&B curves (train.loggers) and the W&B run id
    RUN/job.json               the training job's record (`hpcgan submit`)
    RUN/eval-job.json          the last `hpcgan submit --eval` job ids
    RUN/HOLD.json              the job that holds the run (hpcgan/runs/hold.py)
    RUN/CHECKPOINT_NOW         `touch` it: the run checkpoints at its next step
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.json"
METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
EVAL_LOG = "eval.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LOGGERS = "loggers"
JOB_RECORD = "job.json"
EVAL_JOB_RECORD = "eval-job.json"
CHECKPOINT_REQUEST = "CHECKPOINT_NOW"
RUN_MARKERS = (CONFIG, JOB_RECORD)  # a folder with either is a run dir (a submitted run has job.json first)
# What `--resume none --overwrite` moves aside: the earlier run's training outputs.
TRAINING_OUTPUTS = (CHECKPOINTS, METRICS, EVENTS, SAMPLES, EVAL_LOG, LOGGERS)


@dataclass(frozen=True)
class RunPaths:
    """The files of the run dir `root` (nothing is checked or created here)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def eval_log(self) -> Path:
        return self.root / EVAL_LOG

    @property
    def samples(self) -> Path:
        return self.root / SAMPLES

    def sample_grid(self, step: int) -> Path:
        return self.samples / f"step-{step:06d}.png"

    @property
    def loggers(self) -> Path:
        return self.root / LOGGERS

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:07d}.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def job_record(self) -> Path:
        return self.root / JOB_RECORD

    @property
    def eval_job_record(self) -> Path:
        return self.root / EVAL_JOB_RECORD

    @property
    def checkpoint_request(self) -> Path:
        return self.root / CHECKPOINT_REQUEST


def is_run(path: Path) -> bool:
    return any((Path(path) / marker).is_file() for marker in RUN_MARKERS)


def find_runs(root: Path) -> list[Path]:
    """Run dirs at or under `root`: the root itself, its children, or a sweep's grandchildren."""
    root = Path(root)
    if is_run(root):
        return [root]
    patterns = [f"{depth}{marker}" for depth in ("*/", "*/*/") for marker in RUN_MARKERS]
    return sorted({p.parent for pattern in patterns for p in root.glob(pattern)})


def run_dir_of_checkpoint(path: Path) -> Path:
    """The run dir a checkpoint file belongs to (RUN/checkpoints/step-N.pt -> RUN)."""
    return path.parent.parent if path.parent.name == CHECKPOINTS else path.parent
