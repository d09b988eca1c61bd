"""hpcgan/train/schedules.py: the half-cosine, progress over the images seen, the LR/gamma factor,
Adam's beta2 and the EMA decay for a half-life in images with its ramp-up, and the state round trip."""

import math

import pytest

from hpcgan.train.schedules import Schedules, cosine


def at(images: int, horizon: float = 1000) -> Schedules:
    s = Schedules(horizon)
    s.advance(images)
    return s


@pytest.mark.parametrize(("start", "end"), [(1.0, 0.1), (0.0, 0.99), (5.0, 5.0), (-2.0, 3.0)])
def test_cosine_ends_and_midpoint(start, end):
    assert cosine(start, end, 0.0) == pytest.approx(start)
    assert cosine(start, end, 1.0) == pytest.approx(end)
    assert cosine(start, end, 0.5) == pytest.approx((start + end) / 2)


def test_cosine_at_a_quarter_follows_the_half_wave():
    # end + (start - end) (1 + cos(pi / 4)) / 2
    assert cosine(1.0, 0.0, 0.25) == pytest.approx((1 + math.sqrt(0.5)) / 2)


def test_cosine_clamps_progress_outside_0_1():
    assert cosine(1.0, 0.2, -3.0) == pytest.approx(1.0)
    assert cosine(1.0, 0.2, 7.0) == pytest.approx(0.2)


def test_cosine_is_monotone_between_its_ends():
    values = [cosine(1.0, 0.0, t / 20) for t in range(21)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_progress_is_images_over_the_horizon_and_zero_without_one():
    s = Schedules(2000)
    s.advance(300)
    s.advance(200)
    assert s.images == 500 and s.progress == pytest.approx(0.25)
    assert at(500, horizon=0).progress == 0.0


def test_factor_decays_from_1_to_the_final_fraction():
    assert at(0).factor(0.1) == pytest.approx(1.0)
    assert at(500).factor(0.1) == pytest.approx(0.55)
    assert at(1000).factor(0.1) == pytest.approx(0.1)
    assert at(5000).factor(0.1) == pytest.approx(0.1)  # past the horizon it stays


def test_beta2_warms_up_on_the_cosine_and_zero_start_means_end_throughout():
    assert at(0).beta2(0.9, 0.99) == pytest.approx(0.9)
    assert at(500).beta2(0.9, 0.99) == pytest.approx(0.945)
    assert at(1000).beta2(0.9, 0.99) == pytest.approx(0.99)
    assert at(0).beta2(0.0, 0.99) == 0.99 and at(500).beta2(0.0, 0.99) == 0.99


def test_ema_decay_halves_the_weight_over_the_half_life():
    s = at(10**9)  # long past any ramp-up
    decay = s.ema_decay(half_life_kimg=10, rampup_ratio=0.05, global_batch=32)
    steps_per_half_life = 10_000 / 32
    assert decay**steps_per_half_life == pytest.approx(0.5)
    assert decay == pytest.approx(0.5 ** (32 / 10_000))


def test_ema_half_life_ramps_up_with_the_images_seen():
    s = at(20_000)
    # min(10 kimg, 0.05 x 20 000 = 1 000 images): the half-life is the seen images' ratio.
    assert s.ema_decay(10, 0.05, 32) == pytest.approx(0.5 ** (32 / 1000))
    assert s.ema_decay(10, 0.0, 32) == pytest.approx(0.5 ** (32 / 10_000))  # no ramp-up


def test_ema_decay_at_the_start_of_a_ramped_run_copies_g():
    assert at(0).ema_decay(10, 0.05, 32) == pytest.approx(0.0)


def test_state_dict_round_trips_and_the_horizon_is_kept():
    a = at(1234, horizon=5000)
    b = Schedules(99)  # a resumed run computes another horizon: the saved one wins
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == {"images": 1234, "horizon_images": 5000.0}
    assert b.progress == a.progress and b.factor(0.2) == a.factor(0.2)


def test_load_state_dict_restores_the_types():
    s = Schedules(1)
    s.load_state_dict({"images": 12.0, "horizon_images": 300})
    assert type(s.images) is int and type(s.horizon_images) is float
