"""What every rank must agree on after each step, in one small all-reduce (sum): did any rank see a
non-finite loss or gradient, did rank 0 find a checkpoint request, which stop signal arrived, and
ADA's sum of sign(D(real)) over all ranks."""

from __future__ import annotations

import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hpcgan.train.gan_steps import StepStats
from hpcgan.train.stop_signals import StopSignals

# USR2 (time limit or preemption: requeue wanted) outranks TERM when ranks saw different signals.
STOP_PRIORITY = (signal.SIGUSR2, signal.SIGTERM)


@dataclass(frozen=True)
class Agreement:
    diverged: bool
    checkpoint_requested: bool
    stop_signal: str | None  # e.g. "SIGUSR2"
    real_signs: float  # all ranks' sum


def agree(stats_d: StepStats, stats_g: StepStats, fp16: bool, requested: bool, stop: StopSignals | None,
          real_signs, device: torch.device) -> Agreement:  # fmt: skip
    """Every rank calls this after its step. In fp16 an infinite gradient is the loss scaler's
    business (it skips that step); a non-finite loss is not."""
    values = [stats_d.loss, stats_g.loss, torch.as_tensor(stats_d.penalty, device=device)]
    if not fp16:
        values += [stats_d.grad_norm, stats_g.grad_norm]
    bad = (~torch.isfinite(torch.stack(values))).any().float()
    received = stop.received if stop is not None else None
    signalled = [float(received == sig) for sig in STOP_PRIORITY]
    flags = torch.stack([bad, *(torch.tensor(v, device=device) for v in (float(requested), *signalled)),
                         torch.as_tensor(real_signs, dtype=torch.float32, device=device)])  # fmt: skip
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(flags)
    flags = flags.tolist()
    stop_signal = next((sig.name for sig, seen in zip(STOP_PRIORITY, flags[2:4], strict=True) if seen > 0), None)
    return Agreement(flags[0] > 0, flags[1] > 0, stop_signal, flags[4])
