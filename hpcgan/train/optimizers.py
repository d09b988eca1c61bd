"""The networks' optimizers, and a digest of the parameters they move."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from hpcgan.errors import UserError
from hpcgan.train.config import OptimConfig


def make_optimizer(o: OptimConfig, model: nn.Module, which: str) -> torch.optim.Optimizer:
    """The optimizer of G (`which`="g") or D, at its initial LR (the schedules set it per step)."""
    lr = o.lr_g if which == "g" else o.lr_d
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(o.beta1, o.beta2), fused=o.fused)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=lr)
    raise UserError(f"optim.name={o.name}: expected adam or rmsprop")

def param_digest(module: torch.nn.Module) -> str:
    """sha256 of the parameters (not buffers: BatchNorm statistics are per rank)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.named_parameters()):
        h.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
