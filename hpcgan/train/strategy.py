"""How the two networks are wrapped, stepped and their optimizers saved: the seam between the
trainer and a parallelism. `DDPStrategy` (accelerate's DistributedDataParallel) lives here;
`DeepSpeedStrategy` (two ZeRO engines) in hpcgan/train/deepspeed_strategy.py, imported only when
chosen because deepspeed is an optional extra."""

from __future__ import annotations

import os
import warnings
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from torch import nn

from hpcgan.errors import UserError
from hpcgan.train.deepspeed_config import ZERO_PARTITIONS
from hpcgan.train.precision import Precision, scaler_state


class Strategy(Protocol):
    """What the trainer needs of a parallelism. `g`/`d` are what it trains (wrappers or engines),
    `opt_g`/`opt_d` their optimizers (param_groups carry the LRs the schedules set)."""

    g: Any
    d: Any
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    def modules(self) -> tuple[nn.Module, nn.Module]:
        """What the losses call for G and D."""
        ...

    def unwrap(self, model: Any) -> nn.Module:
        """The plain network behind `g` or `d`."""
        ...

    def step(self, loss: torch.Tensor, which: str) -> torch.Tensor:
        """Backward, step and zero the gradients of network `which` ("g" or "d"); the pre-clip gradient norm."""
        ...

    def clamp_weights(self, bound: float) -> None:
        """WGAN weight clipping of D."""
        ...

    def loss_scales(self) -> dict[str, float]:
        """The fp16 loss scales for the metrics log ({} without fp16)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Optimizer (and loss scaler) states under opt_g, opt_d, scaler_g, scaler_d; every rank calls it."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class DDPStrategy:
    """Both networks in accelerate's DDP; mixed precision is ours, one loss scaler per network in fp16."""

    def __init__(self, acc: Accelerator, precision: Precision, grad_clip: float, g, d, opt_g, opt_d) -> None:
        self.acc, self.grad_clip = acc, grad_clip
        self.g, self.d, self.opt_g, self.opt_d = acc.prepare(g, d, opt_g, opt_d)
        self.scalers = {"g": precision.scaler(), "d": precision.scaler()}

    def modules(self) -> tuple[nn.Module, nn.Module]:
        return self.g, self.d

    def unwrap(self, model: Any) -> nn.Module:
        return self.acc.unwrap_model(model)

    def step(self, loss: torch.Tensor, which: str) -> torch.Tensor:
        """In fp16 the network's own scaler skips steps with overflowing gradients and lowers its scale."""
        model, optimizer = (self.g, self.opt_g) if which == "g" else (self.d, self.opt_d)
        scaler = self.scalers[which]
        self.acc.backward(scaler.scale(loss) if scaler is not None else loss)
        if scaler is not None:
            scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip or float("inf"))  # inf: measure
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return norm.detach()

    @torch.no_grad()
    def clamp_weights(self, bound: float) -> None:
        for p in self.d.parameters():
            p.clamp_(-bound, bound)

    def loss_scales(self) -> dict[str, float]:
        return {f"loss_scale_{k}": s.get_scale() for k in ("d", "g") if (s := self.scalers[k]) is not None}

    def state_dict(self) -> dict[str, Any]:
        return {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "scaler_g": scaler_state(self.scalers["g"]), "scaler_d": scaler_state(self.scalers["d"])}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if ZERO_PARTITIONS in state["opt_g"]:
            warnings.warn("optimizer states of a DeepSpeed checkpoint: weights only, Adam starts afresh", stacklevel=2)
        else:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        for which in ("g", "d"):
            scaler = self.scalers[which]
            if scaler is not None and state.get(f"scaler_{which}"):
                scaler.load_state_dict(state[f"scaler_{which}"])


def make_accelerator() -> Accelerator:
    """accelerate's process state: CPU (gloo) or CUDA (NCCL), checked against WORLD_SIZE."""
    cuda = torch.cuda.is_available()
    # Mixed precision is ours (hpcgan/train/precision.py): one loss scaler per network in fp16.
    # broadcast_buffers=False: D's BatchNorm buffers change in forward; DDP re-broadcasting them
    # between D's forward and backward fails ("modified by an inplace operation").
    acc = Accelerator(
        cpu=not cuda, mixed_precision="no", kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)]
    )
    expected = int(os.environ.get("WORLD_SIZE", "1"))
    if acc.num_processes != expected:
        raise UserError(
            f"WORLD_SIZE={expected} but accelerate started {acc.num_processes} process(es); "
            "on CPU, launch with torchrun or `accelerate launch --multi_gpu`"
        )
    return acc
