"""Mixed precision for two networks: autocast, and in fp16 one GradScaler per network.

accelerate keeps a single GradScaler and updates it at every optimizer step, i.e. twice per GAN
iteration; the PyTorch AMP guide says each loss/optimizer pair needs its own scaler updated once
per its step. So precision is handled here, and accelerate only wraps for DDP.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from hpcgan.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"train.precision={precision}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":  # bf16 autocast is slower than fp32 on CPUs without AMX
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


class Precision:
    def __init__(self, precision: str, device: torch.device) -> None:
        self.name, self.device = resolve(precision, device), device
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """A new loss scaler for one network (fp16 only)."""
        return torch.amp.GradScaler(self.device.type) if self.name == "fp16" else None


def scaler_state(scaler: torch.amp.GradScaler | None) -> dict[str, Any]:
    return scaler.state_dict() if scaler is not None else {}
