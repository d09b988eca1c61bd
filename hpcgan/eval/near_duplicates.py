"""Near-duplicates among generated samples: how often a sample's nearest *other* sample (in an
extractor's feature space) is much closer than real images ever are to each other.

A collapsed generator draws the same few images again and again: each sample then has a twin.
The yardstick is real: the threshold is `ratio` x the median leave-one-out nearest-neighbour
distance within one half of the real features, and the same test on the other half gives the
real rate (real sets hold near-twins too: follow-up images of one patient). Both sets are the same
size, since nearest-neighbour distances shrink as a set grows.
"""

from __future__ import annotations

import torch

from hpcgan.eval.memorization import nearest_neighbours

DEFAULT_RATIO = 0.5  # as the memorisation check's near-copy threshold


def near_duplicate_rates(
    reference: torch.Tensor, real: torch.Tensor, fake: torch.Tensor, ratio: float = DEFAULT_RATIO
) -> dict[str, float]:
    """Rates of near-duplicates in `fake` and in `real` (same size), with the threshold from
    `reference` (other real features): {"near_duplicates", "near_duplicates_real", "near_duplicate_threshold"}."""
    threshold = ratio * float(nearest_neighbours(reference, reference, exclude_self=True)[0].median())
    rate = {}
    for key, features in (("near_duplicates", fake), ("near_duplicates_real", real)):
        distances, _ = nearest_neighbours(features, features, exclude_self=True)
        rate[key] = float((distances < threshold).double().mean())
    return {**rate, "near_duplicate_threshold": threshold}
