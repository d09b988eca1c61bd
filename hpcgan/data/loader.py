"""The training data loader: WebDataset shards streamed to every rank, resumable to the sample.

Order. For epoch e, the shard list is shuffled with (seed, e) and dealt to ranks, balancing
sample counts; each rank streams its shards through a shuffle buffer seeded with (seed, e, rank)
and cuts the stream into batches. With fewer shards than ranks, every rank reads all shards and
keeps every world_size-th sample instead. The batch sequence is therefore a pure function of
(seed, epoch, world size) and the shard set: it does not depend on the number of DataLoader
workers, so a job may resume with a different worker count.

Equal length. Every rank yields exactly `len(loader)` = N // (world_size * batch_size) batches
per epoch (a rank short of samples wraps around its own shards), so DDP never waits on a rank
that ran out.

Workers. All workers of a rank walk the same undecoded stream (cheap: tar reading only) and
worker w decodes batches w, w+K, w+2K...; the DataLoader hands results back round-robin, which
restores batch order exactly.

Resume. `state_dict()` holds (epoch, batches consumed in the epoch); after `load_state_dict()`
the stream skips that many batches undecoded and continues with the very next one.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.filters import _shuffle

from hpcgan.data.formats import decode
from hpcgan.data.index import ShardInfo, ShardSet
from hpcgan.errors import UserError


@dataclass(frozen=True)
class LoaderPosition:
    epoch: int = 0
    batch: int = 0  # batches of this epoch already handed to the caller, per rank


def rank_shard_plan(
    shards: list[ShardInfo], world_size: int, rank: int, seed: int, epoch: int
) -> tuple[list[int], int]:
    """Which shards (indices into `shards`) rank `rank` reads in `epoch`, in order, and the
    sample stride: 1 when shards are dealt to ranks, world_size when all ranks read all shards."""
    order = np.random.default_rng([seed, epoch]).permutation(len(shards)).tolist()
    if len(shards) < world_size:
        return order, world_size
    loads = [0] * world_size
    assigned: list[list[int]] = [[] for _ in range(world_size)]
    for i in order:  # greedy: next shard to the least-loaded rank, ties to the lowest rank
        target = loads.index(min(loads))
        assigned[target].append(i)
        loads[target] += shards[i].count
    return assigned[rank], 1


class _RankEpochStream(IterableDataset):
    """One rank's batches for one epoch, from `start_batch` on. Lives in each DataLoader worker."""

    def __init__(
        self,
        shards: list[ShardInfo],
        ext: str,
        size: int,
        rank: int,
        world_size: int,
        seed: int,
        epoch: int,
        batch_size: int,
        num_batches: int,
        start_batch: int,
        shuffle_buffer: int,
    ) -> None:
        super().__init__()
        self.shards, self.ext, self.size = shards, ext, size
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, epoch
        self.batch_size, self.num_batches, self.start_batch = batch_size, num_batches, start_batch
        self.shuffle_buffer = shuffle_buffer

    def _raw_samples(self) -> Iterator[dict[str, Any]]:
        """Undecoded samples of this rank, endless (wrapping around its shards)."""
        plan, stride = rank_shard_plan(self.shards, self.world_size, self.rank, self.seed, self.epoch)
        urls = [{"url": str(self.shards[i].path)} for i in plan]
        keep = {"__key__", self.ext, "cls"}
        position = 0
        while True:
            start = position
            for sample in wds.tarfile_samples(iter(urls)):
                if position % stride == self.rank % stride:
                    yield {k: v for k, v in sample.items() if k in keep}
                position += 1
            if position == start:
                raise UserError(f"shards {', '.join(u['url'] for u in urls)}: hold no samples")

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        rng = random.Random(f"{self.seed}/{self.epoch}/{self.rank}")
        stream = _shuffle(self._raw_samples(), bufsize=self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)
        batch: list[dict[str, Any]] = []
        index = 0  # batch number within the epoch
        for sample in stream:
            batch.append(sample)
            if len(batch) < self.batch_size:
                continue
            if index >= self.start_batch and (index - self.start_batch) % num_workers == worker:
                yield self._decode(batch)
            batch, index = [], index + 1
            if index == self.num_batches:
                return

    def _decode(self, samples: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = np.empty((len(samples), 1, self.size, self.size), dtype=np.uint8)
        for i, sample in enumerate(samples):
            images[i, 0] = decode(sample[self.ext], self.ext, self.size)
        labels = torch.tensor([int(s["cls"]) for s in samples], dtype=torch.int64)
        return torch.from_numpy(images), labels


class ShardLoader:
    """Batches of (uint8 images [B, 1, S, S], int64 labels [B]) for one rank of a job.

    Iterating gives the rest of the current epoch, then moves to the next one. Never flips.
    """

    def __init__(
        self,
        shards: str | Path | ShardSet,
        batch_size: int,
        *,
        split: str = "train",
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        num_workers: int = 0,
        shuffle_buffer: int = 1000,
        pin_memory: bool = False,
    ) -> None:
        self.shard_set = shards if isinstance(shards, ShardSet) else ShardSet.open(shards)
        self.shards = self.shard_set.shards(split)
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        if batch_size < 1:
            raise UserError(f"batch size {batch_size}: expected at least 1")
        if num_workers < 0:
            raise UserError(f"num_workers {num_workers}: expected 0 or more")
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.shuffle_buffer, self.pin_memory = max(1, shuffle_buffer), pin_memory
        total = sum(s.count for s in self.shards)
        self.num_batches = total // (self.world_size * batch_size)
        if self.num_batches == 0:
            raise UserError(
                f"{self.shard_set.root}: split {split!r} has {total} images, fewer than one global batch "
                f"({self.world_size} ranks x {batch_size}); lower the batch size"
            )
        self._position = LoaderPosition()

    def __len__(self) -> int:
        """Batches per epoch, the same on every rank."""
        return self.num_batches

    @property
    def position(self) -> LoaderPosition:
        return self._position

    @property
    def samples_seen(self) -> int:
        """Samples handed out so far across all ranks (the global sample count)."""
        p = self._position
        return (p.epoch * self.num_batches + p.batch) * self.batch_size * self.world_size

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self._position.epoch,
            "batch": self._position.batch,
            "seed": self.seed,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key in ("seed", "world_size", "batch_size"):
            if key in state and state[key] != getattr(self, key):
                raise UserError(
                    f"loader state was saved with {key}={state[key]}, this loader has {getattr(self, key)}; "
                    "an exact resume needs the same value"
                )
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if not 0 <= batch <= self.num_batches:
            raise UserError(f"loader state batch {batch} is outside this epoch's 0..{self.num_batches}")
        self._position = LoaderPosition(epoch, batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, start = self._position.epoch, self._position.batch
        if start >= self.num_batches:
            epoch, start = epoch + 1, 0
            self._position = LoaderPosition(epoch, 0)
        stream = _RankEpochStream(
            self.shards,
            self.shard_set.extension,
            self.shard_set.image_size,
            self.rank,
            self.world_size,
            self.seed,
            epoch,
            self.batch_size,
            self.num_batches,
            start,
            self.shuffle_buffer,
        )
        workers = min(self.num_workers, self.num_batches - start)
        loader = DataLoader(
            stream, batch_size=None, num_workers=workers, pin_memory=self.pin_memory, persistent_workers=False
        )
        for batch in loader:
            self._position = LoaderPosition(epoch, self._position.batch + 1)
            yield batch
        self._position = LoaderPosition(epoch + 1, 0)


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values win; else torch.distributed when initialised; else the launcher's env."""
    if rank is None or world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:
            rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world_size:
        raise UserError(f"rank {rank} is outside world size {world_size}")
    return rank, world_size
