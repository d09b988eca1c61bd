"""hpcgan/models/losses.py: every loss kind against its closed form on hand-picked logits, and the
gradient penalties against analytic gradients of simple discriminators."""

import math

import pytest
import torch

from hpcgan.models.losses import (
    LOSSES,
    d_loss,
    g_loss,
    gradient_penalty,
    zero_centred_penalties,
    zero_centred_penalty,
)


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_bce_of_zero_logits_is_log_2_per_term():
    zeros = torch.zeros(5)
    # -log(sigmoid(0)) = -log(1 - sigmoid(0)) = log 2, once for real and once for fake.
    assert d_loss("bce", zeros, zeros).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert g_loss("bce", zeros).item() == pytest.approx(math.log(2), rel=1e-6)


def test_bce_d_loss_is_softplus_of_minus_real_plus_softplus_of_fake():
    real, fake = [2.0, -1.0, 0.5], [1.0, -3.0, 0.0]
    expected = sum(softplus(-r) for r in real) / 3 + sum(softplus(f) for f in fake) / 3
    assert d_loss("bce", torch.tensor(real), torch.tensor(fake)).item() == pytest.approx(expected, rel=1e-6)


def test_bce_g_loss_is_the_non_saturating_form():
    fake = [1.0, -3.0, 0.0]
    expected = sum(softplus(-f) for f in fake) / 3  # -log sigmoid(f), not log(1 - sigmoid(f))
    assert g_loss("bce", torch.tensor(fake)).item() == pytest.approx(expected, rel=1e-6)


def test_bce_targets_carry_label_smoothing():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 1.0])
    t_real, t_fake = torch.tensor([0.9, 0.9]), torch.tensor([0.1, 0.0])

    def bce(logit, target):  # -(t log s + (1 - t) log(1 - s)) = softplus(-x) t + softplus(x) (1 - t)
        return target * softplus(-logit) + (1 - target) * softplus(logit)

    expected = (bce(0.0, 0.9) + bce(2.0, 0.9)) / 2 + (bce(-1.0, 0.1) + bce(1.0, 0.0)) / 2
    assert d_loss("bce", real, fake, t_real, t_fake).item() == pytest.approx(expected, rel=1e-6)


def test_hinge_is_zero_once_real_and_fake_are_past_the_margin():
    assert d_loss("hinge", torch.tensor([2.0, 1.0]), torch.tensor([-1.0, -5.0])).item() == 0.0


def test_hinge_d_loss_against_its_formula():
    real, fake = [2.0, 0.5, -1.0], [0.0, -2.0, 0.5]
    expected = sum(max(0.0, 1 - r) for r in real) / 3 + sum(max(0.0, 1 + f) for f in fake) / 3
    assert d_loss("hinge", torch.tensor(real), torch.tensor(fake)).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind", ["hinge", "wgan"])
def test_hinge_and_wgan_g_loss_is_minus_the_mean_fake_logit(kind):
    assert g_loss(kind, torch.tensor([1.0, -2.0, 4.0])).item() == pytest.approx(-1.0)


def test_wgan_d_loss_is_the_mean_fake_minus_the_mean_real_logit():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.5, -1.5, 2.0])
    assert d_loss("wgan", real, fake).item() == pytest.approx((0.5 - 1.5 + 2.0) / 3 - 2.0)


def test_rpgan_of_equal_logits_is_log_2():
    logits = torch.tensor([-3.0, 0.0, 5.0])
    assert d_loss("rpgan", logits, logits).item() == pytest.approx(math.log(2), rel=1e-6)
    assert g_loss("rpgan", logits, logits).item() == pytest.approx(math.log(2), rel=1e-6)


def test_rpgan_pairs_real_i_with_fake_i_not_the_batch_means():
    real, fake = torch.tensor([4.0, 0.0]), torch.tensor([0.0, 4.0])
    # Pairs (4, 0) and (0, 4): softplus(-4) and softplus(4); the means alone would give log 2.
    expected = (softplus(-4.0) + softplus(4.0)) / 2
    assert d_loss("rpgan", real, fake).item() == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(math.log(2))


@pytest.mark.parametrize("kind", ["bce", "hinge", "wgan", "rpgan"])
def test_d_loss_falls_as_real_logits_rise_above_fake_ones(kind):
    fake = torch.zeros(4)
    low, high = d_loss(kind, torch.full((4,), 0.5), fake), d_loss(kind, torch.full((4,), 0.9), fake)
    assert high < low


def test_every_listed_loss_is_accepted_and_an_unknown_one_is_refused():
    for kind in LOSSES:
        d_loss(kind, torch.zeros(2), torch.zeros(2))
        g_loss(kind, torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="lsgan"):
        d_loss("lsgan", torch.zeros(2), torch.zeros(2))


def test_r1_of_a_linear_d_is_the_squared_weight_norm_per_sample():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])  # D(x) = sum(w * x): grad = w, |grad|^2 = 1 + 4 + 0.25 + 9
    x = torch.randn(6, 4, requires_grad=True)
    assert zero_centred_penalty((x * w).sum(1), x).item() == pytest.approx(14.25, rel=1e-6)


def test_r1_of_a_quadratic_d_is_the_mean_of_4_x_squared():
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0]], requires_grad=True)
    logits = x.pow(2).sum(1)  # grad = 2x, |grad|^2 = 4 |x|^2: 4 * 5 and 4 * 9
    assert zero_centred_penalty(logits, x).item() == pytest.approx((20 + 36) / 2)


def test_r1_keeps_the_graph_so_the_penalty_trains_d():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.randn(3, 2, requires_grad=True)
    zero_centred_penalty((x * w).sum(1), x).backward()  # d/dw |w|^2 = 2w
    assert torch.allclose(w.grad, 2 * w.detach())


def test_r1_and_r2_from_one_pass_equal_separate_penalties():
    w = torch.tensor([0.5, -1.0, 2.0])
    real = torch.randn(3, 3, requires_grad=True)
    fake = torch.randn(3, 3, requires_grad=True)
    logits = torch.cat([(real * w).sum(1), (fake.pow(2) * w).sum(1)])  # linear on real, quadratic on fake
    r1, r2 = zero_centred_penalties(logits, [real, fake])
    assert r1.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-6)
    expected_r2 = (2 * fake.detach() * w).pow(2).sum(1).mean().item()
    assert r2.item() == pytest.approx(expected_r2, rel=1e-6)


def test_gradient_penalty_is_zero_for_a_unit_norm_gradient():
    w = torch.tensor([0.6, 0.8])  # |w| = 1
    x = torch.randn(4, 2, requires_grad=True)
    assert gradient_penalty((x * w).sum(1), x).item() == pytest.approx(0.0, abs=1e-7)


def test_gradient_penalty_is_the_squared_distance_of_the_norm_from_1():
    w = torch.tensor([3.0, 4.0])  # |w| = 5: (5 - 1)^2 = 16
    x = torch.randn(4, 2, requires_grad=True)
    assert gradient_penalty((x * w).sum(1), x).item() == pytest.approx(16.0, rel=1e-6)
    x2 = torch.tensor([[1.0, 0.0], [0.0, 0.25]], requires_grad=True)
    # D(x) = |x|^2: grad norm 2|x| = 2 and 0.5, so ((2 - 1)^2 + (0.5 - 1)^2) / 2.
    assert gradient_penalty(x2.pow(2).sum(1), x2).item() == pytest.approx((1 + 0.25) / 2)
