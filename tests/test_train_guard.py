"""The trainer's safety nets: the divergence guard (NaN rollback, giving up), on-demand
checkpoints, and fp16 with one loss scaler per network."""

import json

import pytest
import torch

from tests.conftest import assert_one_line_error, run_cli
from tests.test_train import TINY, assert_identical, final_state


@pytest.fixture(scope="module")
def phantoms32(tmp_path_factory):
    out = tmp_path_factory.mktemp("ph32") / "shards"
    run_cli("phantom", out, "--n", "128", "--size", "32", "--shard-size", "64", "--workers", "2")
    return out


def train(data, run_dir, *overrides, check=True):
    args = ("train", "--gan", "dcgan64", "--data", data, "--run-dir", run_dir, *TINY, "model.resolution=32")
    return run_cli(*args, *overrides, threads=1, check=check)


def records(run_dir, kind):
    return [json.loads(line) for line in (run_dir / f"{kind}.jsonl").read_text().splitlines()]


def test_a_nan_rolls_back_to_the_last_checkpoint_and_lowers_the_lr(phantoms32, tmp_path):
    run_dir = tmp_path / "nan"
    proc = train(phantoms32, run_dir, "train.steps=14", "checkpoint.every=5", "guard.inject_nan_at=8",
                 "train.log_every=1")  # fmt: skip
    assert "non-finite loss or gradient at step 8: rolled back" in proc.stderr and "step 5" in proc.stderr
    diverged = [r for r in records(run_dir, "events") if r["event"] == "diverged"]
    assert [(r["failed_at"], r["rolled_back_to"], r["change"]) for r in diverged] == [(8, 5, "LR x0.5")]
    metrics = records(run_dir, "metrics")
    assert [r["step"] for r in metrics] == [*range(1, 8), *range(6, 15)]  # steps 6 and 7 again, then on
    after = metrics[7:]
    assert all(r["lr_g"] == pytest.approx(1e-4) for r in after)
    final = final_state(run_dir, 14)
    assert final["guard"]["lr_scale"] == 0.5 and final["guard"]["rollbacks"] == 1
    assert all(torch.isfinite(p).all() for p in final["g"].values() if p.is_floating_point())


def test_a_nan_before_the_first_checkpoint_restarts_from_the_initial_weights(phantoms32, tmp_path):
    """Reseeding from step 0 is a different run; with policy=lr only the LR differs."""
    run_dir = tmp_path / "early"
    proc = train(phantoms32, run_dir, "train.steps=6", "checkpoint.every=0", "guard.inject_nan_at=3",
                 "guard.policy=reseed")  # fmt: skip
    assert "rolled back to the initial weights (step 0); reseed #1" in proc.stderr
    assert final_state(run_dir, 6)["guard"]["reseeds"] == 1


def test_the_guard_gives_up_after_its_retries_with_one_line_and_keeps_checkpoints(phantoms32, tmp_path):
    run_dir = tmp_path / "hopeless"
    proc = train(phantoms32, run_dir, "train.steps=14", "checkpoint.every=5", "guard.inject_nan_at=8",
                 "guard.inject_nan_times=100", "guard.retries=2", "guard.policy=both", check=False)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    _started, *warned, error = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "training diverged at step 8" in error and "after 2 rollback(s) to step 5" in error
    assert len(warned) == 2 and all(line.startswith("warning: non-finite loss") for line in warned)
    assert final_state(run_dir, 5)["step"] == 5  # the good checkpoint is still there


def test_a_rollback_is_exact_with_the_lr_policy(phantoms32, tmp_path):
    """Rolled back at step 8 to step 5 with LR x0.5, the run equals one resumed from step 5 with
    the LR scale already at 0.5: the rollback restores every state (weights, optimisers, loader, RNG)."""
    train(phantoms32, tmp_path / "a", "train.steps=12", "checkpoint.every=5", "guard.inject_nan_at=8")
    train(phantoms32, tmp_path / "b", "train.steps=5", "checkpoint.every=5")
    ckpt = tmp_path / "b" / "checkpoints" / "step-0000005.pt"
    state = torch.load(ckpt, weights_only=True)
    state["guard"]["lr_scale"] = 0.5
    torch.save(state, ckpt)
    (ckpt.with_suffix(".json")).unlink()  # an edited file no longer matches its marker
    train(phantoms32, tmp_path / "c", "train.steps=12", "checkpoint.every=5", f"--resume={ckpt}")
    assert_identical(final_state(tmp_path / "a", 12), final_state(tmp_path / "c", 12))


def test_touching_checkpoint_now_saves_at_the_next_step(phantoms32, tmp_path):
    run_dir = tmp_path / "ondemand"
    run_dir.mkdir()
    (run_dir / "CHECKPOINT_NOW").touch()
    train(phantoms32, run_dir, "train.steps=4", "checkpoint.every=0")
    assert (run_dir / "checkpoints" / "step-0000001.json").exists()
    assert not (run_dir / "CHECKPOINT_NOW").exists()


def test_fp16_has_a_scaler_per_network_and_resumes_exactly(phantoms32, tmp_path):
    fp16 = ("train.precision=fp16", "train.log_every=1")
    train(phantoms32, tmp_path / "full", "train.steps=8", *fp16)
    train(phantoms32, tmp_path / "split", "train.steps=3", *fp16)
    train(phantoms32, tmp_path / "split", "train.steps=8", *fp16)
    a, b = final_state(tmp_path / "full", 8), final_state(tmp_path / "split", 8)
    assert_identical(a, b, keys=("g", "d", "ema", "opt_g", "opt_d", "scaler_g", "scaler_d", "loader"))
    assert a["scaler_g"]["scale"] > 0 and a["scaler_d"]["scale"] > 0
    last = records(tmp_path / "full", "metrics")[-1]
    assert {"loss_scale_d", "loss_scale_g", "grad_norm_d", "grad_norm_g"} <= set(last)


def test_bad_trainer_options_are_one_line_errors(phantoms32, tmp_path):
    for override, words in (
        ("train.augment=flip", "train.augment=flip: expected"),
        ("train.diffaugment=jpeg", "train.diffaugment=jpeg: expected"),
        ("train.precision=fp8", "train.precision=fp8: expected"),
        ("guard.policy=pray", "guard.policy=pray: expected"),
        ("loss.kind=mse", "loss.kind=mse: expected"),
        ("model.d_arch=resnet model.d_batchnorm=true", "has no BatchNorm"),
        ("model.arch=bigan model.conditional=aux", "bigan architecture is unconditional"),
    ):
        proc = train(phantoms32, tmp_path / "bad", *override.split(), "train.steps=1", check=False)
        assert_one_line_error(proc, words)
