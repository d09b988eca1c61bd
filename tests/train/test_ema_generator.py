"""hpcgan/train/ema_generator.py: no EMA with train.ema=0 (G draws), the per-step decay with its
ramp-up, the half-life in images (train.ema_kimg), the state round trip, and a copy independent of G."""

import pytest
import torch
from torch import nn

from hpcgan.train.config import TrainConfig
from hpcgan.train.ema_generator import EmaGenerator
from hpcgan.train.schedules import Schedules

CPU = torch.device("cpu")


class TinyG(nn.Module):
    def __init__(self, value=0.0):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.norm = nn.BatchNorm1d(2)
        with torch.no_grad():
            for p in self.linear.parameters():
                p.fill_(value)


def _fill(g, value):
    with torch.no_grad():
        for p in g.linear.parameters():
            p.fill_(value)


def _config(**fields):
    c = TrainConfig()
    for k, v in fields.items():
        setattr(c, k, v)
    return c


def _schedules(images):
    s = Schedules(10**9)
    s.advance(images)
    return s


def _values(module):
    return {float(v) for p in module.linear.parameters() for v in p.detach().flatten()}


def _all_close(module, expected):
    return all(torch.allclose(p.detach(), torch.full_like(p, expected)) for p in module.linear.parameters())


def test_ema_zero_keeps_no_module_and_g_draws():
    g = TinyG()
    ema = EmaGenerator(_config(ema=0.0), g, CPU)
    assert ema.module is None and ema.drawing(g) is g
    assert ema.state_dict() == {}


def test_ema_zero_update_and_load_do_nothing():
    g = TinyG(1.0)
    ema = EmaGenerator(_config(ema=0.0), g, CPU)
    ema.update(g, 10, _schedules(0), 32)
    ema.load_state_dict({})
    assert _values(g) == {1.0}


def test_with_ema_the_copy_draws_and_starts_equal_to_g():
    g = TinyG(2.0)
    ema = EmaGenerator(_config(ema=0.999), g, CPU)
    assert ema.drawing(g) is ema.module and ema.module is not g
    assert _values(ema.module) == {2.0}


def test_the_copy_is_in_eval_mode_without_gradients():
    ema = EmaGenerator(_config(ema=0.999), TinyG().train(), CPU)
    assert not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_the_copy_is_independent_of_g():
    g = TinyG(1.0)
    ema = EmaGenerator(_config(ema=0.999), g, CPU)
    _fill(g, 5.0)
    assert _values(ema.module) == {1.0}
    assert all(e.data_ptr() != p.data_ptr() for e, p in zip(ema.module.parameters(), g.parameters(), strict=True))


def test_a_per_step_update_after_the_ramp_up_uses_the_decay():
    g = TinyG(1.0)
    ema = EmaGenerator(_config(ema=0.9, ema_rampup=10), g, CPU)
    _fill(g, 3.0)
    ema.update(g, 1000, _schedules(0), 32)  # min(0.9, 1001 / 1010) = 0.9
    assert _all_close(ema.module, 0.9 * 1.0 + 0.1 * 3.0)


def test_a_per_step_update_during_the_ramp_up_uses_the_ramped_decay():
    g = TinyG(1.0)
    ema = EmaGenerator(_config(ema=0.9, ema_rampup=10), g, CPU)
    _fill(g, 3.0)
    ema.update(g, 5, _schedules(0), 32)  # d = min(0.9, (1 + 5) / (10 + 5)) = 0.4
    assert _all_close(ema.module, 0.4 * 1.0 + 0.6 * 3.0)


def test_updates_compound_as_the_average_does():
    g = TinyG(0.0)
    ema = EmaGenerator(_config(ema=0.5, ema_rampup=0), g, CPU)
    _fill(g, 8.0)
    for step in range(3):
        ema.update(g, step, _schedules(0), 32)
    assert _all_close(ema.module, 8.0 * (1 - 0.5**3))


def test_an_update_copies_gs_buffers():
    g = TinyG()
    ema = EmaGenerator(_config(ema=0.9), g, CPU)
    g.norm.running_mean.fill_(7.0)
    ema.update(g, 1000, _schedules(0), 32)
    assert torch.equal(ema.module.norm.running_mean, torch.full((2,), 7.0))


def test_ema_kimg_uses_the_half_life_in_images_capped_by_the_images_seen():
    g = TinyG(1.0)
    ema = EmaGenerator(_config(ema=0.999, ema_rampup=100, ema_kimg=1.0, ema_rampup_ratio=0.05), g, CPU)
    _fill(g, 3.0)
    schedules = _schedules(10_000)  # half-life min(1000, 0.05 x 10000 = 500) images
    ema.update(g, 0, schedules, 100)  # the per-step ramp-up (step 0 would give d <= 0.01) is not used
    d = 0.5 ** (100 / 500)
    assert d == pytest.approx(schedules.ema_decay(1.0, 0.05, 100))
    assert _all_close(ema.module, d * 1.0 + (1 - d) * 3.0)


def test_ema_kimg_without_a_ramp_up_uses_the_full_half_life():
    g = TinyG(1.0)
    ema = EmaGenerator(_config(ema=0.999, ema_kimg=2.0, ema_rampup_ratio=0.0), g, CPU)
    _fill(g, 3.0)
    ema.update(g, 0, _schedules(0), 200)
    d = 0.5 ** (200 / 2000)
    assert _all_close(ema.module, d * 1.0 + (1 - d) * 3.0)


def test_the_state_round_trips_into_a_fresh_ema_generator():
    g = TinyG(1.0)
    ema = EmaGenerator(_config(ema=0.5, ema_rampup=0), g, CPU)
    _fill(g, 5.0)
    g.norm.running_var.fill_(4.0)
    ema.update(g, 10, _schedules(0), 32)  # parameters 3.0, running_var 4.0
    fresh = EmaGenerator(_config(ema=0.5), TinyG(-1.0), CPU)
    fresh.load_state_dict(ema.state_dict())
    assert _values(fresh.module) == {3.0}
    assert torch.equal(fresh.module.norm.running_var, torch.full((2,), 4.0))
