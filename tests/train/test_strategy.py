"""hpcgan/train/strategy.py: DDPStrategy on one CPU process (accelerate without WORLD_SIZE): a step
lowers the loss, returns the pre-clip gradient norm and zeroes the gradients; clipping caps the
update; D's weight clamp; the optimizer state round trip; a DeepSpeed state is refused with a warning."""

import math

import pytest
import torch
from torch import nn

from hpcgan.train.deepspeed_config import ZERO_PARTITIONS
from hpcgan.train.precision import Precision
from hpcgan.train.strategy import DDPStrategy, make_accelerator

CPU = torch.device("cpu")
X = torch.tensor([[1.0, 1.0]])  # one input; the "networks" are y = w . x


@pytest.fixture(scope="module")
def acc():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WORLD_SIZE", raising=False)
        accelerator = make_accelerator()
    assert accelerator.num_processes == 1
    return accelerator


def _linear(w):
    net = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([w]))
    return net


def _strategy(acc, optimizer="sgd", lr=0.01, grad_clip=0.0, precision="fp32", g_w=(1.0, 2.0), d_w=(0.5, -0.5)):
    g, d = _linear(g_w), _linear(d_w)
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=lr), "adam": lambda p: torch.optim.Adam(p, lr=lr)}[optimizer]
    return DDPStrategy(acc, Precision(precision, CPU), grad_clip, g, d, make(g.parameters()), make(d.parameters()))


def _loss(net):
    """(w . x)^2 at x = (1, 1): gradient 2 (w . x) x."""
    return (net(X) ** 2).sum()


def _weight(s, which="g"):
    return s.unwrap(s.g if which == "g" else s.d).weight.detach().clone()


def test_a_step_lowers_a_quadratic_loss(acc):
    s = _strategy(acc)
    before = _loss(s.g).item()  # (1 + 2)^2 = 9
    s.step(_loss(s.g), "g")
    assert before == pytest.approx(9.0)
    assert _loss(s.g).item() < before


def test_a_sgd_step_moves_the_weights_by_lr_times_the_gradient(acc):
    s = _strategy(acc, lr=0.01)
    s.step(_loss(s.g), "g")  # gradient 2 x 3 x (1, 1) = (6, 6)
    assert torch.allclose(_weight(s), torch.tensor([[1.0 - 0.06, 2.0 - 0.06]]))


def test_a_step_returns_the_gradient_norm(acc):
    s = _strategy(acc)
    norm = s.step(_loss(s.g), "g")
    assert float(norm) == pytest.approx(math.hypot(6.0, 6.0))


def test_a_step_zeroes_the_gradients(acc):
    s = _strategy(acc)
    s.step(_loss(s.g), "g")
    assert all(p.grad is None for p in s.g.parameters())


def test_a_step_of_d_moves_d_and_not_g(acc):
    s = _strategy(acc, d_w=(2.0, 2.0))
    s.step(_loss(s.d), "d")  # gradient 2 x 4 x (1, 1)
    assert torch.allclose(_weight(s, "d"), torch.tensor([[2.0 - 0.08, 2.0 - 0.08]]))
    assert torch.equal(_weight(s, "g"), torch.tensor([[1.0, 2.0]]))


def test_grad_clipping_caps_the_update_and_reports_the_norm_before_clipping(acc):
    s = _strategy(acc, lr=1.0, grad_clip=1.0)
    before = _weight(s)
    norm = s.step(_loss(s.g), "g")
    update = _weight(s) - before
    assert float(norm) == pytest.approx(math.hypot(6.0, 6.0))  # pre-clip
    assert float(update.norm()) == pytest.approx(1.0, rel=1e-4)  # lr 1 x a gradient clipped to norm 1
    assert torch.allclose(update, torch.full((1, 2), -math.sqrt(0.5)), atol=1e-4)  # same direction


def test_a_gradient_under_the_clip_is_left_alone(acc):
    s = _strategy(acc, lr=0.01, grad_clip=100.0)
    s.step(_loss(s.g), "g")
    assert torch.allclose(_weight(s), torch.tensor([[0.94, 1.94]]))


def test_clamp_weights_bounds_ds_weights_only(acc):
    s = _strategy(acc, g_w=(3.0, -3.0), d_w=(0.7, -0.02))
    s.clamp_weights(0.05)
    assert torch.allclose(_weight(s, "d"), torch.tensor([[0.05, -0.02]]))
    assert torch.equal(_weight(s, "g"), torch.tensor([[3.0, -3.0]]))


def test_fp32_has_no_loss_scales(acc):
    assert _strategy(acc).loss_scales() == {}


def test_fp16_reports_each_networks_loss_scale_and_unscales_the_norm(acc):
    s = _strategy(acc, precision="fp16")
    norm = s.step(_loss(s.g), "g")
    assert float(norm) == pytest.approx(math.hypot(6.0, 6.0))  # not x 65536
    assert torch.allclose(_weight(s), torch.tensor([[0.94, 1.94]]))
    assert s.loss_scales() == {"loss_scale_d": 65536.0, "loss_scale_g": 65536.0}


def test_fp16_skips_an_overflowing_step_and_halves_only_that_networks_scale(acc):
    s = _strategy(acc, precision="fp16")
    norm = s.step((s.g(X) * float("inf")).sum(), "g")
    assert not math.isfinite(float(norm))
    assert torch.equal(_weight(s), torch.tensor([[1.0, 2.0]]))
    assert s.loss_scales() == {"loss_scale_d": 65536.0, "loss_scale_g": 32768.0}


def _adam_moments(optimizer):
    return [(k, v["exp_avg"].clone(), v["exp_avg_sq"].clone()) for k, v in optimizer.state_dict()["state"].items()]


def test_the_state_round_trips_adams_moments_into_a_fresh_strategy(acc):
    s = _strategy(acc, optimizer="adam", lr=0.1)
    s.step(_loss(s.g), "g")
    s.step(_loss(s.d), "d")
    state = s.state_dict()
    assert set(state) == {"opt_g", "opt_d", "scaler_g", "scaler_d"} and state["scaler_g"] == {}
    fresh = _strategy(acc, optimizer="adam", lr=0.1)
    assert fresh.opt_g.state_dict()["state"] == {}
    fresh.load_state_dict(state)
    for old, new in ((s.opt_g, fresh.opt_g), (s.opt_d, fresh.opt_d)):
        (k_old, m_old, v_old), (k_new, m_new, v_new) = _adam_moments(old)[0], _adam_moments(new)[0]
        assert k_old == k_new and torch.equal(m_old, m_new) and torch.equal(v_old, v_new)
        assert float(new.state_dict()["state"][k_new]["step"]) == 1.0


def test_the_fp16_scalers_round_trip(acc):
    s = _strategy(acc, precision="fp16")
    s.step((s.g(X) * float("inf")).sum(), "g")  # G's scale drops to 32768
    fresh = _strategy(acc, precision="fp16")
    fresh.load_state_dict(s.state_dict())
    assert fresh.loss_scales() == {"loss_scale_d": 65536.0, "loss_scale_g": 32768.0}


def test_a_deepspeed_optimizer_state_warns_and_keeps_a_fresh_optimizer(acc):
    s = _strategy(acc, optimizer="adam", lr=0.1)
    partitions = {ZERO_PARTITIONS: [{"base": {}}], "stage": 1}  # what DeepSpeedStrategy saves
    deepspeed_state = {"opt_g": partitions, "opt_d": partitions, "scaler_g": {}, "scaler_d": {}}
    with pytest.warns(UserWarning, match="DeepSpeed checkpoint"):
        s.load_state_dict(deepspeed_state)
    assert s.opt_g.state_dict()["state"] == {} and s.opt_d.state_dict()["state"] == {}
    assert s.opt_g.param_groups[0]["lr"] == 0.1
    s.step(_loss(s.g), "g")  # and it still steps
