"""Which steps W&B already holds for a run: read from the run's own .wandb files (what `wandb sync`
uploads), since offline W&B keeps no history across the starts of a requeued job.

A .wandb file is a record log in LevelDB's log format after a 7-byte header (":W&B", a magic
number, a version): 32 KiB blocks of chunks, each a 7-byte header (CRC, length, type) and part of
one protobuf `Record`. A run killed mid-write leaves a cut-short last chunk; it is skipped, as
`wandb sync` skips it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

HEADER = b":W&B"
BLOCK = 32 * 1024
CHUNK = struct.Struct("<IHB")  # CRC32, length, type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[bytes]:
    """The serialized records of one .wandb file, in order; nothing from a file of another format."""
    data = Path(path).read_bytes()
    if not data.startswith(HEADER):
        return
    pos, pending = 7, b""
    while pos + CHUNK.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK.size:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _, length, kind = CHUNK.unpack_from(data, pos)
        if kind == 0:  # zeros: the rest of the block is padding
            pos += left
            continue
        body = data[pos + CHUNK.size : pos + CHUNK.size + length]
        if len(body) < length:  # the chunk a kill cut short
            return
        pos += CHUNK.size + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pending = body
        elif kind == MIDDLE:
            pending += body
        elif kind == LAST:
            yield pending + body
            pending = b""


def history_steps(path: Path) -> list[int]:
    """The steps of the history rows in one .wandb file, in the order they were written."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    steps = []
    for raw in records(path):
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(raw)
        except DecodeError:  # a damaged record is one row less
            continue
        if record.WhichOneof("record_type") == "history":
            steps.append(int(record.history.step.num))
    return steps


def run_files(wandb_dir: Path, run_id: str) -> list[Path]:
    """The .wandb files of `run_id` under a W&B dir, one per start of the run, oldest first."""
    found = Path(wandb_dir).glob(f"*run-*-{run_id}/run-{run_id}.wandb")
    return sorted(found, key=lambda p: p.parent.name.split("-")[-2])  # by start time (YYYYMMDD_HHMMSS)


def logged_steps(wandb_dir: Path, run_id: str) -> list[int]:
    """Every history step of `run_id` in the local files, oldest start first."""
    return [step for path in run_files(wandb_dir, run_id) for step in history_steps(path)]
