"""hpcgan/train/checkpoint_size.py against checkpoints the trainer really saved."""

import pytest

from hpcgan.train.checkpoint_size import checkpoint_bytes, parameter_counts
from hpcgan.train.config import apply_overrides
from hpcgan.train.presets import preset
from tests.conftest import run_cli

ONE_STEP = ["train.steps=1", "train.batch_size=4", "train.num_workers=0", "train.sample_every=0"]


@pytest.fixture(scope="module")
def ph64(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt-ph64") / "shards"
    run_cli("phantom", out, "--n", "32", "--size", "64", "--shard-size", "32", "--workers", "1")
    return out


# dcgan64: Adam (2 moments) and an EMA G; wgan64: RMSprop (1 moment); r3gan64 at a narrower width:
# grouped convolutions and EMA by half-life.
@pytest.mark.parametrize("gan", ["dcgan64", "wgan64", "r3gan64 model.g_width=16 model.d_width=16"])
def test_the_counted_size_is_within_one_percent_of_a_saved_checkpoint(ph64, tmp_path, gan):
    gan, *extra = gan.split()
    run_cli("train", "--gan", gan, "--data", ph64, "--run-dir", tmp_path / "run", *ONE_STEP, *extra, threads=1)
    saved = (tmp_path / "run" / "checkpoints" / "step-0000001.pt").stat().st_size
    config = apply_overrides(preset(gan), extra)
    counted = checkpoint_bytes(config, *parameter_counts(config))
    assert counted == pytest.approx(saved, rel=0.01), (counted, saved)


def test_rmsprop_keeps_one_moment_and_no_ema_drops_the_ema_copy():
    adam = preset("dcgan64")
    g, d = parameter_counts(adam)
    assert checkpoint_bytes(adam, g, d) == 4 * (3 * (g + d) + g)
    no_ema = apply_overrides(adam, ["train.ema=0", "optim.name=rmsprop"])
    assert checkpoint_bytes(no_ema, g, d) == 4 * 2 * (g + d)
