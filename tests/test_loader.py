"""The shard loader in one process: equal lengths, order a pure function of (seed, epoch, world
size), independent of the worker count, and exact resume from a saved position."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.errors import UserError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom") / "shards"
    # 150 images in uneven shards of 20 (the last has 10): 8 shards.
    run_cli("phantom", out, "--n", "150", "--size", "32", "--shard-size", "20", "--workers", "2")
    return ShardSet.open(out)


def sequence(loader, limit=None):
    """The batches of one pass, as (image bytes digest, labels) pairs."""
    seen = []
    for images, labels in loader:
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        seen.append((hash(images.numpy().tobytes()), tuple(labels.tolist())))
        if limit is not None and len(seen) == limit:
            break
    return seen


def test_every_rank_gets_the_same_number_of_batches(phantoms):
    for world in (1, 2, 3, 5, 9):  # 9 ranks > 8 shards: all ranks read all shards, strided
        lengths = []
        for rank in range(world):
            loader = ShardLoader(phantoms, batch_size=4, rank=rank, world_size=world)
            lengths.append(len(sequence(loader)))
        assert lengths == [150 // (4 * world)] * world, (world, lengths)


def test_order_is_a_function_of_seed_epoch_world_size_not_workers(phantoms):
    reference = sequence(ShardLoader(phantoms, batch_size=8, rank=1, world_size=2, seed=3))
    for workers in (1, 2, 3):
        assert (
            sequence(ShardLoader(phantoms, batch_size=8, rank=1, world_size=2, seed=3, num_workers=workers))
            == reference
        )
    assert sequence(ShardLoader(phantoms, batch_size=8, rank=1, world_size=2, seed=4)) != reference
    assert sequence(ShardLoader(phantoms, batch_size=8, rank=0, world_size=2, seed=3)) != reference


def test_epochs_differ_and_continue(phantoms):
    loader = ShardLoader(phantoms, batch_size=5, seed=0)
    first, second = sequence(loader), sequence(loader)
    assert len(first) == len(second) == 30 and first != second
    assert loader.position.epoch == 2 and loader.position.batch == 0
    # One epoch with world size 1 sees every image exactly once.
    images = torch.cat([im for im, _ in ShardLoader(phantoms, batch_size=5, seed=0)])
    assert len({hash(im.numpy().tobytes()) for im in images}) == 150


def test_ranks_see_disjoint_samples_in_an_epoch(phantoms):
    for world in (2, 9):
        per_rank = []
        for rank in range(world):
            loader = ShardLoader(phantoms, batch_size=2, rank=rank, world_size=world)
            per_rank.append({hash(im.numpy().tobytes()) for batch, _ in loader for im in batch})
        union = set().union(*per_rank)
        assert len(union) == sum(len(s) for s in per_rank), f"world {world}: a sample went to two ranks"


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("stop", [1, 7, 18, 25])
def test_resume_continues_with_exactly_the_next_batch(phantoms, workers, stop):
    make = lambda: ShardLoader(phantoms, batch_size=8, rank=0, world_size=1, seed=7, num_workers=workers)
    uninterrupted = sequence(make()) + sequence(make_at_epoch(make(), 1))
    first = make()
    head = sequence(first, limit=stop) if stop <= len(first) else sequence(first) + sequence(first, stop - len(first))
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    tail = []
    while len(head) + len(tail) < len(uninterrupted):  # the rest of epoch 0 (if any) and epoch 1
        tail += sequence(resumed, limit=len(uninterrupted) - len(head) - len(tail))
    assert head + tail == uninterrupted


def make_at_epoch(loader, epoch):
    loader.load_state_dict(dict(loader.state_dict(), epoch=epoch, batch=0))
    return loader


def test_resume_with_other_world_size_is_refused(phantoms):
    state = ShardLoader(phantoms, batch_size=4, rank=0, world_size=2).state_dict()
    with pytest.raises(UserError, match="world_size=2"):
        ShardLoader(phantoms, batch_size=4, rank=0, world_size=1).load_state_dict(state)


def test_batch_larger_than_the_data_is_a_clear_error(phantoms):
    with pytest.raises(UserError, match="fewer than one global batch"):
        ShardLoader(phantoms, batch_size=100, world_size=2, rank=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_stopping_mid_epoch_and_iterating_again_continues(phantoms, workers):
    reference = sequence(ShardLoader(phantoms, batch_size=8, seed=5, num_workers=workers))
    loader = ShardLoader(phantoms, batch_size=8, seed=5, num_workers=workers)
    head = sequence(loader, limit=5)  # e.g. a trainer that stops to evaluate, then goes on
    assert loader.position.batch == 5
    assert head + sequence(loader) == reference


def test_seek_global_samples_continues_at_the_same_point_with_another_world_size(phantoms):
    two_ranks = ShardLoader(phantoms, batch_size=4, rank=0, world_size=2)
    sequence(two_ranks)
    sequence(two_ranks, limit=5)  # one epoch and 5 batches: 18 * 8 + 5 * 8 = 184 samples in all
    seen = two_ranks.state_dict()["samples_seen"]
    assert seen == (18 + 5) * 8
    one_rank = ShardLoader(phantoms, batch_size=4, rank=0, world_size=1)
    one_rank.seek_global_samples(seen)
    assert one_rank.samples_seen == seen and one_rank.position.epoch == 1 and one_rank.position.batch == 9


WORKER_SIGNALS = """
import os, signal, sys, time
from hpcgan.data.loader import ShardLoader
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append("TERM"))  # as the trainer's stop handler: record only
loader = ShardLoader(sys.argv[1], batch_size=8, num_workers=2, seed=0)
batches = iter(loader)
next(batches)
me = os.getpid()
workers = [int(p) for p in open(f"/proc/{me}/task/{me}/children").read().split()]
for pid in (os.getpid(), *workers):  # SLURM signals every process of the step
    os.kill(pid, signal.SIGTERM)
time.sleep(1)
for _ in range(len(loader) - 1):  # the workers are still there: the main process decides when to stop
    next(batches)
print(got, len(workers), flush=True)
"""


def test_workers_survive_the_stop_signal_slurm_sends_and_the_process_still_exits(phantoms, tmp_path):
    """scontrol requeue SIGTERMs every process of the step; a worker killed by it took the trainer
    down before it could save. At exit (no close()), the workers must still go: no hang."""
    script = tmp_path / "signals.py"
    script.write_text(WORKER_SIGNALS)
    proc = subprocess.run([sys.executable, script, phantoms.root], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["['TERM']", "2"], proc.stdout
