"""Decisions that rank 0 takes for every rank: file-system checks and writes that must happen once,
whose outcome every rank needs (so no rank waits in a collective for one that gave up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch.distributed as dist

from hpcgan.errors import UserError

T = TypeVar("T")


def is_rank0() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def rank0_decides(decide: Callable[[], T]) -> T:
    """decide() on rank 0; every rank returns its value, or raises the same one-line UserError.
    The value must pickle (it is broadcast)."""
    box: list = [("ok", None)]
    if is_rank0():
        try:
            box = [("ok", decide())]
        except UserError as exc:
            box = [("error", str(exc))]
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise UserError(value)
    return value
