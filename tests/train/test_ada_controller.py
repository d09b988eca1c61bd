"""hpcgan/train/ada_controller.py: p moves by sign(r_t - target) x (images in the interval) / (images
for 0 -> 1) after every `interval`-th step, stays in [0, 1], and the state round-trips mid-interval."""

import pytest

from hpcgan.train.ada_controller import AdaController

BATCH = 32
STEP = BATCH * 4 / 1000  # images per interval / images_to_full


def controller() -> AdaController:
    return AdaController(target=0.6, interval=4, images_to_full=1000)


def feed(c: AdaController, first: int, last: int, r_t: float) -> None:
    """Steps first..last, each with BATCH real images whose signs average r_t."""
    for step in range(first, last + 1):
        c.observe(r_t * BATCH, BATCH, step, BATCH)


def test_p_starts_at_zero():
    assert controller().p == 0.0


def test_p_rises_by_one_interval_of_images_when_r_t_is_above_target():
    c = controller()
    feed(c, 1, 4, r_t=0.8)
    assert c.r_t == pytest.approx(0.8)
    assert c.p == pytest.approx(STEP)
    feed(c, 5, 8, r_t=0.8)
    assert c.p == pytest.approx(2 * STEP)


def test_p_falls_by_the_same_amount_when_r_t_is_below_target():
    c = controller()
    c.load_state_dict({"p": 0.5, "signs": 0.0, "count": 0.0})
    feed(c, 1, 4, r_t=0.2)
    assert c.p == pytest.approx(0.5 - STEP)


def test_r_t_exactly_at_target_leaves_p_alone_as_the_sign_in_the_docstring_says():
    c = AdaController(target=0.5, interval=4, images_to_full=1000)
    c.load_state_dict({"p": 0.5, "signs": 0.0, "count": 0.0})
    feed(c, 1, 4, r_t=0.5)  # 64 of 128 signs: exactly 0.5
    assert c.r_t == 0.5 and c.p == pytest.approx(0.5)


def test_p_only_moves_on_every_interval_th_step():
    c = controller()
    feed(c, 1, 3, r_t=1.0)
    assert c.p == 0.0 and c.count == 3 * BATCH
    feed(c, 4, 4, r_t=1.0)
    assert c.p == pytest.approx(STEP) and c.count == 0 and c.signs == 0


def test_r_t_averages_the_signs_over_the_whole_interval():
    c = controller()
    for step, r in zip(range(1, 5), [1.0, 1.0, 0.0, 0.0], strict=True):  # mean 0.5: below 0.6
        c.observe(r * BATCH, BATCH, step, BATCH)
    assert c.r_t == pytest.approx(0.5) and c.p == 0.0


def test_p_clamps_at_zero_and_one():
    c = controller()
    feed(c, 1, 40, r_t=-1.0)
    assert c.p == 0.0
    feed(c, 41, 4 * 40, r_t=1.0)  # 30 intervals x 0.128 > 1
    assert c.p == 1.0


def test_the_amount_scales_with_images_per_step_and_images_to_full():
    c = AdaController(target=0.0, interval=2, images_to_full=500)
    c.observe(10, 10, 1, 64)
    c.observe(10, 10, 2, 64)
    assert c.p == pytest.approx(64 * 2 / 500)


def test_no_images_no_adjustment():
    c = controller()
    c.observe(0.0, 0.0, 4, BATCH)
    assert c.p == 0.0


def test_state_round_trips_mid_interval_and_both_carry_on_alike():
    a = controller()
    feed(a, 1, 6, r_t=0.9)  # one adjustment, two steps into the next interval
    b = controller()
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()
    feed(a, 7, 8, r_t=0.9)
    feed(b, 7, 8, r_t=0.9)
    assert b.p == a.p == pytest.approx(2 * STEP)


def test_an_old_state_without_r_t_loads():
    c = controller()
    c.load_state_dict({"p": 0.25, "signs": 3, "count": 8})
    assert (c.p, c.signs, c.count, c.r_t) == (0.25, 3.0, 8.0, 0.0)
