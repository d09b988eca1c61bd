"""hpcgan/eval/near_duplicates.py on hand-made features: the threshold is ratio x the median
leave-one-out nearest-neighbour distance of the reference, and a rate is the share of rows whose
nearest *other* row is closer than that."""

import pytest
import torch

from hpcgan.eval.near_duplicates import DEFAULT_RATIO, near_duplicate_rates

# Five points one apart on a line: every leave-one-out nearest neighbour is at distance 1.
REFERENCE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
SPREAD = torch.tensor([[0.0, 0.0], [3.0, 0.0], [6.0, 0.0], [9.0, 0.0]])  # nearest other row at 3


def test_the_threshold_is_the_ratio_times_the_references_median_nearest_distance():
    assert DEFAULT_RATIO == 0.5
    assert near_duplicate_rates(REFERENCE, SPREAD, SPREAD)["near_duplicate_threshold"] == pytest.approx(0.5)
    assert near_duplicate_rates(REFERENCE, SPREAD, SPREAD, ratio=2.0)["near_duplicate_threshold"] == pytest.approx(2.0)


def test_the_median_ignores_one_far_outlier():
    with_outlier = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [50.0, 0.0]])  # 1, 1, 1, 1, 47
    assert near_duplicate_rates(with_outlier, SPREAD, SPREAD)["near_duplicate_threshold"] == pytest.approx(0.5)


def test_identical_generated_images_are_near_duplicates():
    fake = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])  # one pair of twins
    rates = near_duplicate_rates(REFERENCE, SPREAD, fake)
    assert rates["near_duplicates"] == pytest.approx(0.5)  # both twins have one
    assert rates["near_duplicates_real"] == 0.0


def test_a_collapsed_generator_has_a_twin_for_every_sample():
    fake = torch.tensor([[7.0, 7.0]] * 3 + [[-1.0, 5.0]] * 3)
    assert near_duplicate_rates(REFERENCE, SPREAD, fake)["near_duplicates"] == 1.0


def test_distinct_images_are_not_near_duplicates():
    fake = torch.tensor([[0.0, 0.0], [0.0, 0.6], [5.0, 5.0], [0.6, 0.0]])  # nearest others 0.6 apart, > 0.5
    assert near_duplicate_rates(REFERENCE, SPREAD, fake)["near_duplicates"] == 0.0


def test_a_pair_just_under_the_threshold_counts_and_one_at_it_does_not():
    under = torch.tensor([[0.0, 0.0], [0.4, 0.0], [10.0, 0.0], [20.0, 0.0]])
    at = torch.tensor([[0.0, 0.0], [0.5, 0.0], [10.0, 0.0], [20.0, 0.0]])
    assert near_duplicate_rates(REFERENCE, SPREAD, under)["near_duplicates"] == pytest.approx(0.5)
    assert near_duplicate_rates(REFERENCE, SPREAD, at)["near_duplicates"] == 0.0  # strictly closer only


def test_the_real_rate_uses_the_same_threshold_on_the_real_half():
    real = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [5.0, 0.2], [9.0, 9.0]])  # two near pairs of five
    rates = near_duplicate_rates(REFERENCE, real, SPREAD)
    assert rates["near_duplicates_real"] == pytest.approx(4 / 5)
    assert rates["near_duplicates"] == 0.0


def test_a_larger_ratio_makes_more_pairs_near_duplicates():
    assert near_duplicate_rates(REFERENCE, SPREAD, SPREAD, ratio=3.5)["near_duplicates"] == 1.0  # 3 < 3.5
    assert near_duplicate_rates(REFERENCE, SPREAD, SPREAD, ratio=3.0)["near_duplicates"] == 0.0  # 3 is not < 3
