"""hpcgan/train/step_agreement.py: what every rank agrees on after a step, on two real gloo processes
(divergence seen by one rank, rank 0's checkpoint request, different stop signals, ADA's summed
signs, fp16's infinite gradients), and on a single process without a process group."""

import json
import math
import os
import signal
import socket
from dataclasses import asdict
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hpcgan.train.gan_steps import StepStats
from hpcgan.train.step_agreement import agree

CPU = torch.device("cpu")
NAN, INF = float("nan"), float("inf")


def _stats(loss=1.0, penalty=0.0, grad_norm=1.0):
    return StepStats(loss=torch.tensor(loss), penalty=penalty, grad_norm=torch.tensor(grad_norm))


def _stop(sig):
    """A stand-in for StopSignals: only `received` is read."""
    return SimpleNamespace(received=sig)


def _agree(d=None, g=None, fp16=False, requested=False, stop=None, real_signs=0.0):
    return agree(d or _stats(), g or _stats(), fp16, requested, stop, real_signs, CPU)


# Each scenario: rank -> agree()'s arguments on that rank.
SCENARIOS = {
    "nan_loss_on_rank_1": lambda rank: {"d": _stats(loss=NAN if rank == 1 else 0.5)},
    "nan_penalty_on_rank_0": lambda rank: {"d": _stats(penalty=torch.tensor(NAN) if rank == 0 else 0.1)},
    "all_finite": lambda rank: {},
    "request_on_rank_0": lambda rank: {"requested": rank == 0},
    "usr2_on_0_term_on_1": lambda rank: {"stop": _stop(signal.SIGUSR2 if rank == 0 else signal.SIGTERM)},
    "term_on_0_usr2_on_1": lambda rank: {"stop": _stop(signal.SIGTERM if rank == 0 else signal.SIGUSR2)},
    "term_on_1_only": lambda rank: {"stop": _stop(signal.SIGTERM if rank == 1 else None)},
    "signs": lambda rank: {"real_signs": torch.tensor(5.0) if rank == 0 else -2.0},
    "fp16_inf_grad_on_1": lambda rank: {"fp16": True, "g": _stats(grad_norm=INF if rank == 1 else 2.0)},
    "fp32_inf_grad_on_1": lambda rank: {"fp16": False, "g": _stats(grad_norm=INF if rank == 1 else 2.0)},
    "fp16_nan_loss_on_1": lambda rank: {"fp16": True, "g": _stats(loss=NAN if rank == 1 else 2.0)},
}


def _rank(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    results = {name: asdict(_agree(**make(rank))) for name, make in SCENARIOS.items()}
    with open(f"{out}/rank{rank}.json", "w") as handle:
        json.dump(results, handle)
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Both ranks' Agreement per scenario (one pair of processes for them all)."""
    out = tmp_path_factory.mktemp("agreement")
    mp.spawn(_rank, args=(_free_port(), str(out)), nprocs=2)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return {name: [ranks[0][name], ranks[1][name]] for name in SCENARIOS}


def _both(two_ranks, scenario):
    first, second = two_ranks[scenario]
    assert first == second, f"{scenario}: the ranks disagree: {first} vs {second}"
    return first


def test_a_nan_loss_on_rank_1_only_makes_both_ranks_see_divergence(two_ranks):
    assert _both(two_ranks, "nan_loss_on_rank_1")["diverged"] is True


def test_a_nan_penalty_on_rank_0_only_makes_both_ranks_see_divergence(two_ranks):
    assert _both(two_ranks, "nan_penalty_on_rank_0")["diverged"] is True


def test_finite_steps_on_both_ranks_agree_on_nothing(two_ranks):
    assert _both(two_ranks, "all_finite") == {
        "diverged": False, "checkpoint_requested": False, "stop_signal": None, "real_signs": 0.0,
    }  # fmt: skip


def test_rank_0s_checkpoint_request_reaches_both_ranks(two_ranks):
    agreed = _both(two_ranks, "request_on_rank_0")
    assert agreed["checkpoint_requested"] is True and agreed["diverged"] is False


@pytest.mark.parametrize("scenario", ["usr2_on_0_term_on_1", "term_on_0_usr2_on_1"])
def test_sigusr2_on_one_rank_outranks_sigterm_on_the_other(two_ranks, scenario):
    assert _both(two_ranks, scenario)["stop_signal"] == "SIGUSR2"


def test_a_signal_on_one_rank_only_stops_both(two_ranks):
    assert _both(two_ranks, "term_on_1_only")["stop_signal"] == "SIGTERM"


def test_real_signs_are_summed_over_the_ranks(two_ranks):
    assert _both(two_ranks, "signs")["real_signs"] == pytest.approx(3.0)


def test_in_fp16_an_infinite_grad_norm_alone_is_not_divergence(two_ranks):
    assert _both(two_ranks, "fp16_inf_grad_on_1")["diverged"] is False


def test_in_fp32_an_infinite_grad_norm_is_divergence(two_ranks):
    assert _both(two_ranks, "fp32_inf_grad_on_1")["diverged"] is True


def test_in_fp16_a_nan_loss_is_still_divergence(two_ranks):
    assert _both(two_ranks, "fp16_nan_loss_on_1")["diverged"] is True


def test_a_single_process_agrees_with_itself():
    agreed = _agree(requested=True, stop=_stop(signal.SIGTERM), real_signs=torch.tensor(-4.0))
    assert not dist.is_initialized()
    assert (agreed.diverged, agreed.checkpoint_requested, agreed.stop_signal) == (False, True, "SIGTERM")
    assert agreed.real_signs == -4.0


@pytest.mark.parametrize(
    "bad",
    [{"d": _stats(loss=INF)}, {"g": _stats(loss=NAN)}, {"d": _stats(penalty=NAN)}, {"d": _stats(grad_norm=NAN)}],
)
def test_a_single_process_sees_its_own_non_finite_values(bad):
    assert _agree(**bad).diverged


def test_a_single_process_without_stop_signals_has_none():
    agreed = _agree(stop=None)
    assert agreed.stop_signal is None and not agreed.diverged and not agreed.checkpoint_requested
    assert not math.isnan(agreed.real_signs)
