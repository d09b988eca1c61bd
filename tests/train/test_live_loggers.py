"""hpcgan/train/live_loggers.py: TensorBoard and W&B (offline) curves written while a run trains,
each step once after a rollback and after a resume that repeats logged steps; the key's errors;
loggers only on rank 0. (A real preemption and requeue on SLURM: tests/test_slurm_loggers.py.)"""

import json
import shutil

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hpcgan.errors import UserError
from hpcgan.runs.scalar_tags import record_scalars
from hpcgan.train import live_loggers
from hpcgan.train.config import apply_overrides, check
from hpcgan.train.live_loggers import Forward, open_loggers, parse_loggers
from hpcgan.train.presets import preset
from hpcgan.train.trainer import Trainer
from hpcgan.train.wandb_history import logged_steps, run_files
from tests.conftest import run_cli

TINY = ["model.g_width=8", "model.d_width=8", "train.batch_size=8", "train.num_workers=0", "train.log_every=5",
        "train.sample_every=0", "checkpoint.every=10", "train.loggers=tensorboard,wandb"]  # fmt: skip


def tb_steps(run_dir, tag="train/loss_d"):
    """The steps TensorBoard shows for `tag` (it applies the purges, as the TensorBoard app does)."""
    events = EventAccumulator(str(run_dir / "loggers" / "tensorboard"))
    events.Reload()
    return [e.step for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def wandb_id(run_dir):
    return json.loads((run_dir / "loggers" / "wandb-run.json").read_text())["id"]


def train(data, run_dir, *overrides, on_step=None, resume="auto", overwrite=False):
    config = apply_overrides(preset("dcgan64"), [*TINY, *overrides])
    config.data = str(data)
    trainer = Trainer(config, run_dir, resume=resume, overwrite=overwrite)
    try:
        assert trainer.train(on_step) == "completed"
    finally:
        trainer.close()


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    out = tmp_path_factory.mktemp("ph") / "shards"
    run_cli("phantom", out, "--n", "64", "--size", "64", "--shard-size", "32", "--workers", "1")
    return out


def test_curves_are_written_during_training_and_show_each_step_once(phantoms, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the default: offline
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the Trainer then leaves this test process's threads alone
    run_dir = tmp_path / "run"
    seen_while_training = {}

    def on_step(step, _):
        if step == 12:  # TensorBoard's files are readable while the run goes on
            seen_while_training.setdefault("tb", tb_steps(run_dir))  # the first pass (before the rollback)

    # A NaN at step 18 rolls back to step 10: metrics.jsonl holds step 15 twice, the curves once.
    train(phantoms, run_dir, "train.steps=20", "guard.inject_nan_at=18", on_step=on_step)
    metrics = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert metrics == [5, 10, 15, 15, 20]
    assert seen_while_training["tb"] == [5, 10]
    assert tb_steps(run_dir) == [5, 10, 15, 20]
    run_id = wandb_id(run_dir)
    assert logged_steps(run_dir / "loggers" / "wandb", run_id) == [5, 10, 15, 20]

    # As after a job killed past its last checkpoint: steps 15 and 20 were logged, step 20's
    # checkpoint is gone, so the resumed run repeats them.
    for path in (run_dir / "checkpoints").glob("step-0000020.*"):
        path.unlink()
    train(phantoms, run_dir, "train.steps=30")
    assert tb_steps(run_dir) == [5, 10, 15, 20, 25, 30]  # the earlier 15 and 20 are purged, logged again
    assert wandb_id(run_dir) == run_id  # the same W&B run, one offline folder per start
    files = run_files(run_dir / "loggers" / "wandb", run_id)
    assert len(files) == 2 and all(f.parent.name.startswith("offline-run-") for f in files)
    assert logged_steps(run_dir / "loggers" / "wandb", run_id) == [5, 10, 15, 20, 25, 30]  # 15, 20 not again

    # As if W&B had lost what the last start wrote (a job killed before wandb wrote it): the next
    # start sends those steps from metrics.jsonl, each pass's first record, up to where it resumes.
    (last,) = [f.parent for f in run_files(run_dir / "loggers" / "wandb", run_id)[1:]]
    shutil.rmtree(last)
    train(phantoms, run_dir, "train.steps=35")
    assert logged_steps(run_dir / "loggers" / "wandb", run_id) == [5, 10, 15, 20, 25, 30, 35]
    assert tb_steps(run_dir) == [5, 10, 15, 20, 25, 30, 35]

    # Started again from scratch: a new W&B run, and TensorBoard hides the old run's curves.
    train(phantoms, run_dir, "train.steps=10", resume="none", overwrite=True)
    assert wandb_id(run_dir) != run_id
    assert logged_steps(run_dir / "loggers" / "wandb", wandb_id(run_dir)) == [5, 10]
    assert tb_steps(run_dir) == [5, 10]


def test_a_logger_moves_only_forward_but_takes_an_evaluation_at_its_step():
    forward = Forward(floor=10)
    train, fid = {"train/loss_d"}, {"fid/training-random-n64"}
    records = [(5, train), (10, fid), (15, train), (15, fid), (15, fid), (20, train), (15, train), (20, train),
               (20, fid), (25, train)]  # fmt: skip
    admitted = [(step, tags) for step, tags in records if forward.admits(step, tags)]
    # At or below the floor nothing; after the rollback to 15 (or 12), train/ at 15 and 20 not again.
    assert admitted == [(15, train), (15, fid), (20, train), (20, fid), (25, train)]


def test_evaluations_get_the_report_s_fid_and_kid_tags():
    record = {"step": 10, "fid": 31.5, "kid": 0.02, "extractor": "random:ab12", "n_fake": 64, "precision": 0.5}
    assert record_scalars(record) == {"fid/training-random_ab12-n64": 31.5, "kid/training-random_ab12-n64": 0.02}
    assert record_scalars({"step": 5, "loss_d": 0.7, "loss_g": float("nan"), "epoch": 0}) == {"train/loss_d": 0.7}


def test_unknown_logger_and_missing_package_are_one_line(monkeypatch):
    config = apply_overrides(preset("dcgan64"), ["train.loggers=tensorboard,mlflow"])
    with pytest.raises(UserError, match=r"^train\.loggers=tensorboard,mlflow: expected a comma-separated list of "
                                        r"tensorboard, wandb$"):  # fmt: skip
        check(config)
    with pytest.raises(UserError, match="unknown logger 'mlflow'"):
        parse_loggers("mlflow")
    monkeypatch.setitem(live_loggers.PACKAGES, "wandb", "wandb_is_not_installed")
    with pytest.raises(UserError, match=r"^train\.loggers=wandb needs the wandb_is_not_installed package: "
                                        r"pip install 'hpcgan\[wandb\]'$"):  # fmt: skip
        parse_loggers("tensorboard, wandb")


def test_a_bad_wandb_mode_is_one_line_on_every_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(UserError, match=r"^WANDB_MODE=sometimes \(train\.loggers=wandb\): expected one of offline, "):
        open_loggers("wandb", tmp_path, 0, {}, enabled=True)


def test_other_ranks_get_no_loggers_and_write_nothing(tmp_path):
    loggers = open_loggers("tensorboard,wandb", tmp_path, 0, {}, enabled=False)
    loggers.log({"step": 5, "loss_d": 0.5})
    loggers.close()
    assert loggers.loggers == [] and not (tmp_path / "loggers").exists()


def test_loggers_are_not_part_of_the_run_identity():
    plain = apply_overrides(preset("dcgan64"), [])
    assert apply_overrides(preset("dcgan64"), ["train.loggers=tensorboard,wandb"]).hash() == plain.hash()
