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

Workers. The order is computed on (shard, member) numbers, not on data: each shard's member
table (the offset and size of every image inside the tar, and its label) is read once from the
tar headers. Worker w of K then reads and decodes only batches w, w+K, w+2K... with positioned
reads, and the DataLoader hands results back round-robin, which restores batch order exactly.
The workers live as long as the loader (one endless DataLoader across epochs), so an epoch
boundary costs no process start-up.

Resume. `state_dict()` holds (epoch, batches consumed in the epoch); after `load_state_dict()`
the order is replayed on numbers only (no I/O) up to that batch, and loading continues with the
very next one.

Damage. Opening checks every shard's size against the index and, once per process, its sha256
(hpcgan.data.verify; HPCGAN_VERIFY_SHARDS=0 skips the hash). A sample that still turns out
damaged (undecodable, another size, a label outside the classes) is skipped and counted
(`skipped`, also in the state dict): its place in the batch is taken by the next intact sample of
the same batch. The order stays a function of numbers only, and the stand-in depends only on the
batch's own bytes, so every rank still yields full batches of the same count and a resumed run
reads exactly what an uninterrupted one does.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import multiprocessing
import multiprocessing.util  # registers its exit handler (which stops workers) before ours below
import os
import random
import signal
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from hpcgan.data.formats import CorruptSample, decode_checked
from hpcgan.data.index import ShardSet
from hpcgan.data.label_sets import decode_hot, masks_to_hot
from hpcgan.data.verify import verify_split
from hpcgan.errors import UserError

MAX_SKIP_MESSAGES = 100  # reasons kept for the trainer to report; the count goes on beyond
BALANCES = ("none", "findings")  # real batches: as stored, or every class / finding equally often


@dataclass(frozen=True)
class LoaderPosition:
    epoch: int = 0
    batch: int = 0  # batches of this epoch already handed to the caller, per rank


def rank_shard_plan(counts: list[int], world_size: int, rank: int, seed: int, epoch: int) -> tuple[list[int], int]:
    """Which shards (indices into `counts`, the shards' sample counts) rank `rank` reads in `epoch`, in order, and the
    sample stride: 1 when shards are dealt to ranks, world_size when all ranks read all shards."""
    order = np.random.default_rng([seed, epoch]).permutation(len(counts)).tolist()
    if len(counts) < world_size:
        return order, world_size
    loads = [0] * world_size
    assigned: list[list[int]] = [[] for _ in range(world_size)]
    for i in order:  # greedy: next shard to the least-loaded rank, ties to the lowest rank
        target = loads.index(min(loads))
        assigned[target].append(i)
        loads[target] += counts[i]
    return assigned[rank], 1


@dataclass(frozen=True)
class MemberTable:
    """Where each sample's image sits inside one shard, and its label: a class index, or for a
    multi-label set the label set's bitmask (bit i: class i; -1 when damaged)."""

    path: Path
    offsets: list[int]
    sizes: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.offsets)


def read_member_table(path: Path, ext: str, multi_label_classes: int = 0) -> MemberTable:
    """Scan the tar headers (seeking past the data) for the `.ext` image and its label: the `.cls`
    member, or with `multi_label_classes` > 0 the `.hot` member (a bitmask over that many classes)."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, int] = {}
    label_suffix = "hot" if multi_label_classes else "cls"
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                key, _, suffix = member.name.partition(".")
                if suffix == ext:
                    images[key] = (member.offset_data, member.size)
                elif suffix == label_suffix:
                    data = tar.extractfile(member).read()
                    labels[key] = _hot_mask(data, multi_label_classes) if multi_label_classes else _label(data)
    except (OSError, tarfile.TarError, ValueError, EOFError) as exc:
        raise UserError(f"{path}: unreadable shard ({exc}); re-run `hpcgan shard` to rebuild it") from None
    keys = [k for k in images if k in labels]  # tar order = the order the writer shuffled them into
    return MemberTable(path, [images[k][0] for k in keys], [images[k][1] for k in keys], [labels[k] for k in keys])


def _hot_mask(data: bytes, num_classes: int) -> int:
    """A .hot member's bitmask; -1 when malformed (the sample is skipped when read)."""
    mask = decode_hot(data, num_classes)
    return -1 if mask is None else mask


def _label(data: bytes) -> int:
    """A .cls member's class index; -1 when it is not a number (the sample is skipped when read)."""
    try:
        return int(data)
    except ValueError:
        return -1


_Batch = tuple[torch.Tensor, torch.Tensor, list[str], bool]  # images, labels, skip reasons, all damaged


class _RankStream(IterableDataset):
    """One rank's batches from (epoch, start_batch) on, epoch after epoch, endless. Lives in each
    DataLoader worker; the workers persist across epochs."""

    def __init__(
        self,
        tables: list[MemberTable],
        ext: str,
        size: int,
        num_classes: int,
        rank: int,
        world_size: int,
        seed: int,
        epoch: int,
        batch_size: int,
        num_batches: int,
        start_batch: int,
        shuffle_buffer: int,
        multi_label: bool = False,
        balance: str = "none",
    ) -> None:
        super().__init__()
        self.tables, self.ext, self.size, self.num_classes = tables, ext, size, num_classes
        self.rank, self.world_size, self.seed, self.first_epoch = rank, world_size, seed, epoch
        self.batch_size, self.num_batches, self.start_batch = batch_size, num_batches, start_batch
        self.shuffle_buffer, self.multi_label, self.balance = shuffle_buffer, multi_label, balance

    def sample_order(self, epoch: int) -> Iterator[tuple[int, int]]:
        """(shard, member) pairs of this rank in `epoch`, shuffled. Endless: a rank short of samples
        for the epoch's batch count starts another (differently shuffled) pass over its shards."""
        counts = [len(t) for t in self.tables]
        plan, stride = rank_shard_plan(counts, self.world_size, self.rank, self.seed, epoch)
        if not any(counts[i] for i in plan):
            raise UserError(f"rank {self.rank} has no samples in epoch {epoch}")
        if self.balance == "findings":
            yield from self._balanced_order(plan, stride, epoch)
            return
        for repeat in itertools.count():
            stream = ((i, j) for i in plan for j in range(counts[i]))
            one_pass = (pair for position, pair in enumerate(stream) if position % stride == self.rank % stride)
            rng = random.Random(f"{self.seed}/{epoch}/{self.rank}/{repeat}")
            yield from wds.shuffle(bufsize=self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)(one_pass)

    def _balanced_order(self, plan: list[int], stride: int, epoch: int) -> Iterator[tuple[int, int]]:
        """Draws with replacement from this rank's samples, each weighted by the sum over its classes
        of 1 / (that class's count among them): every class (finding) is then about equally frequent.
        Still numbers only: the labels come from the member tables."""
        stream = ((i, j) for i in plan for j in range(len(self.tables[i])))
        pairs = [pair for position, pair in enumerate(stream) if position % stride == self.rank % stride]
        classes = np.array([self._classes_of(self.tables[i].labels[j]) for i, j in pairs], dtype=bool)
        per_class = classes.sum(axis=0)
        weights = (classes / np.maximum(per_class, 1)).sum(axis=1)
        if weights.sum() == 0:  # every label damaged: the reads will say so
            weights = np.ones(len(pairs))
        weights /= weights.sum()
        for repeat in itertools.count():
            rng = np.random.default_rng([self.seed, epoch, self.rank, repeat])
            yield from (pairs[k] for k in rng.choice(len(pairs), size=len(pairs), p=weights))

    def _classes_of(self, label: int) -> list[bool]:
        if self.multi_label:
            return [label >= 0 and bool(label >> c & 1) for c in range(self.num_classes)]
        return [label == c for c in range(self.num_classes)]

    def batch_order(self) -> Iterator[list[tuple[int, int]]]:
        """The member numbers of every batch from the resume point on (numbers only, no I/O)."""
        epoch, start = self.first_epoch, self.start_batch
        while True:
            order = self.sample_order(epoch)
            for index in range(self.num_batches):
                batch = list(itertools.islice(order, self.batch_size))
                if index >= start:
                    yield batch
            epoch, start = epoch + 1, 0

    def __iter__(self) -> Iterator[_Batch]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        files: dict[int, int] = {}
        try:
            for count, batch in enumerate(self.batch_order()):
                if count % num_workers == worker:
                    yield self._read(batch, files)
        finally:
            for fd in files.values():
                os.close(fd)

    def _read(self, batch: list[tuple[int, int]], files: dict[int, int]) -> _Batch:
        """(images, labels, why each damaged sample was skipped). A damaged sample's place goes to
        the next intact sample of the batch (cyclically): batches keep their size on every rank."""
        images = torch.empty((len(batch), 1, self.size, self.size), dtype=torch.uint8)
        if get_worker_info() is not None:
            # Decode straight into shared memory: the batch then crosses to the main process
            # without another copy (what torch's default_collate does in workers too).
            images.share_memory_()
        pixels = images.numpy()
        labels = [0] * len(batch)
        damaged, skips = set(), []
        for k, (i, j) in enumerate(batch):
            try:
                labels[k] = self._sample(i, j, pixels[k, 0], files)
            except CorruptSample as exc:
                damaged.add(k)
                skips.append(f"{self.tables[i].path.name} sample {j}: {exc}")
        intact = [k for k in range(len(batch)) if k not in damaged]
        for k in sorted(damaged) if intact else []:
            stand_in = next((m for m in intact if m > k), intact[0])
            pixels[k, 0], labels[k] = pixels[stand_in, 0], labels[stand_in]
        # No stand-in at all: the main process raises (an error raised here, in a worker, would
        # reach the user wrapped in the worker's traceback).
        label_tensor = torch.tensor(labels, dtype=torch.int64)
        if self.multi_label:
            label_tensor = masks_to_hot(label_tensor, self.num_classes)
        return images, label_tensor, skips, not intact

    def _sample(self, i: int, j: int, into: np.ndarray, files: dict[int, int]) -> int:
        table = self.tables[i]
        label = table.labels[j]
        if self.multi_label and label < 0:
            raise CorruptSample(f"label set (.hot) is not {self.num_classes} 0/1 flags with No Finding last")
        if not self.multi_label and not 0 <= label < self.num_classes:
            raise CorruptSample(f"label {label} outside the {self.num_classes} classes")
        if i not in files:
            files[i] = os.open(table.path, os.O_RDONLY)
        into[...] = decode_checked(os.pread(files[i], table.sizes[j], table.offsets[j]), self.ext, self.size)
        return label


class ShardLoader:
    """Batches of (uint8 images [B, 1, S, S], int64 labels [B]) for one rank of a job; for a
    multi-label shard set the labels are multi-hot float [B, C] (hpcgan/data/label_sets.py).

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
        verify: bool | None = None,
        balance: str = "none",
    ) -> None:
        """`verify`: check each shard's sha256 against the index the first time this process reads
        it (default: on, unless HPCGAN_VERIFY_SHARDS=0). `balance`: "findings" draws samples so that
        every class (every finding of a multi-label set) is seen about equally often."""
        self.shard_set = shards if isinstance(shards, ShardSet) else ShardSet.open(shards)
        if balance not in BALANCES:
            raise UserError(f"balance {balance!r}: expected one of {', '.join(BALANCES)}")
        self.balance = balance
        verify_split(self.shard_set, split, verify)  # after open's size check: one line naming a damaged shard
        multi = len(self.shard_set.classes) if self.shard_set.multi_label else 0
        # Read once here: forked DataLoader workers inherit the tables every epoch.
        self.tables = [read_member_table(s.path, self.shard_set.extension, multi) for s in self.shard_set.shards(split)]
        for shard, table in zip(self.shard_set.shards(split), self.tables, strict=True):
            if len(table) != shard.count:
                raise UserError(f"{shard.path}: holds {len(table)} samples, index.json says {shard.count}; re-shard")
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        if batch_size < 1:
            raise UserError(f"batch size {batch_size}: expected at least 1")
        if num_workers < 0:
            raise UserError(f"num_workers {num_workers}: expected 0 or more")
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.shuffle_buffer, self.pin_memory = max(1, shuffle_buffer), pin_memory
        total = sum(len(t) for t in self.tables)
        self.num_batches = total // (self.world_size * batch_size)
        if self.num_batches == 0:
            raise UserError(
                f"{self.shard_set.root}: split {split!r} has {total} images, fewer than one global batch "
                f"({self.world_size} ranks x {batch_size}); lower the batch size"
            )
        self._position = LoaderPosition()
        self._batches: Iterator[_Batch] | None = None
        self._closing = None  # the workers' closing flag (stop_only_when_closed)
        self.skipped = 0  # damaged samples this rank skipped so far (kept across a resume)
        self.skip_messages: list[str] = []  # why, for the first MAX_SKIP_MESSAGES of them

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
            "samples_seen": self.samples_seen,
            "skipped": self.skipped,
            "balance": self.balance,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key in ("seed", "world_size", "batch_size", "balance"):
            if key in state and state[key] != getattr(self, key):
                raise UserError(
                    f"loader state was saved with {key}={state[key]}, this loader has {getattr(self, key)}; "
                    "an exact resume needs the same value"
                )
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if not 0 <= batch <= self.num_batches:
            raise UserError(f"loader state batch {batch} is outside this epoch's 0..{self.num_batches}")
        self._position = LoaderPosition(epoch, batch)
        self.skipped = int(state.get("skipped", 0))  # states from before skipping existed: 0
        self._stop_workers()  # restart them from the new position

    def seek_global_samples(self, samples: int) -> None:
        """Continue after `samples` images seen across all ranks, e.g. by a job of another world
        size: the same point in training, though not the same batches."""
        per_batch = self.batch_size * self.world_size
        epoch, rest = divmod(samples // per_batch, self.num_batches)
        self._position = LoaderPosition(epoch, rest)
        self._stop_workers()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._position.batch >= self.num_batches:
            self._position = LoaderPosition(self._position.epoch + 1, 0)
        if self._batches is None:
            self._batches = iter(self._data_loader())
        epoch = self._position.epoch
        while self._position.batch < self.num_batches:
            images, labels, skips, all_damaged = next(self._batches)
            if all_damaged:
                raise UserError(f"every sample of a batch is damaged (e.g. {skips[0]}); rebuild the shard set")
            self._position = LoaderPosition(epoch, self._position.batch + 1)
            self.skipped += len(skips)
            self.skip_messages += skips[: MAX_SKIP_MESSAGES - len(self.skip_messages)]
            yield images, labels
        self._position = LoaderPosition(epoch + 1, 0)

    def _data_loader(self) -> DataLoader:
        """An endless DataLoader from the current position; its workers live across epochs."""
        stream = _RankStream(
            self.tables,
            self.shard_set.extension,
            self.shard_set.image_size,
            len(self.shard_set.classes),
            self.rank,
            self.world_size,
            self.seed,
            self._position.epoch,
            self.batch_size,
            self.num_batches,
            self._position.batch,
            self.shuffle_buffer,
            self.shard_set.multi_label,
            self.balance,
        )
        init = None
        if self.num_workers:
            self._closing = multiprocessing.get_context().Event()
            _OPEN_WORKER_SETS.add(self._closing)
            init = functools.partial(stop_only_when_closed, self._closing)
        return DataLoader(stream, batch_size=None, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          worker_init_fn=init)  # fmt: skip

    def _stop_workers(self) -> None:
        """Let the workers take the SIGTERM PyTorch sends when it shuts them down, then drop them."""
        if self._closing is not None:
            self._closing.set()
            _OPEN_WORKER_SETS.discard(self._closing)
            self._closing = None
        self._batches = None

    def close(self) -> None:
        """Stop the worker processes (they also stop when the loader is garbage collected or the
        process exits)."""
        self._stop_workers()

    def __del__(self) -> None:
        if getattr(self, "_closing", None) is not None:
            self._stop_workers()


# The closing flags of loaders whose workers run. At exit, multiprocessing SIGTERMs and joins every
# worker (daemonic children) with no timeout: set the flags first, so that the workers go.
_OPEN_WORKER_SETS: set = set()
atexit.register(lambda: [event.set() for event in list(_OPEN_WORKER_SETS)])  # runs before multiprocessing's


def stop_only_when_closed(closing, _worker_id: int) -> None:
    """In each loader worker: SLURM signals every process of a job step (scontrol requeue, scancel,
    preemption), and PyTorch's worker handler lets SIGTERM kill the worker, which kills the trainer
    ("DataLoader worker ... is killed by signal: Terminated") before it can agree on a stop and save.
    The main process decides: a worker ignores SIGUSR2 and SIGINT, and SIGTERM unless its loader is
    closing (PyTorch ends workers blocked on a full queue with SIGTERM). A worker whose main process
    died ends by itself (PyTorch's watchdog)."""

    def on_term(_signum: int, _frame: object) -> None:
        if closing.is_set():
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    for sig in (signal.SIGUSR2, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


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
