"""hpcgan/train/rng_state.py: saving and restoring torch's, Python's and NumPy's global random states
gives the same draws again, and the saved state loads with torch.load(weights_only=True)."""

import io
import random

import numpy as np
import torch

from hpcgan.train.rng_state import rng_states, set_rng_states


def _draws():
    return (torch.rand(4).tolist(), [random.random() for _ in range(3)], random.gauss(0, 1),
            np.random.rand(3).tolist(), np.random.standard_normal())  # fmt: skip


def _seeded_mid_gaussian():
    """States partway through, with a cached Box-Muller value in both Python and NumPy."""
    torch.manual_seed(1)
    random.seed(2)
    np.random.seed(3)
    torch.rand(5)
    random.gauss(0, 1)  # Python keeps the pair's second value (gauss_next)
    np.random.standard_normal()  # NumPy keeps it too (has_gauss = 1)


def test_restoring_the_states_repeats_every_draw():
    _seeded_mid_gaussian()
    saved = rng_states()
    first = _draws()
    set_rng_states(saved)
    assert _draws() == first


def test_the_cached_gaussians_are_part_of_the_state():
    _seeded_mid_gaussian()
    assert random.getstate()[2] is not None and np.random.get_state()[3] == 1
    saved = rng_states()
    expected = (random.gauss(0, 1), np.random.standard_normal())
    random.seed(99)
    np.random.seed(99)
    set_rng_states(saved)
    assert (random.gauss(0, 1), np.random.standard_normal()) == expected


def test_other_draws_in_between_are_undone():
    _seeded_mid_gaussian()
    saved = rng_states()
    first = _draws()
    torch.rand(100)
    random.random()
    np.random.rand(7)
    set_rng_states(saved)
    assert _draws() == first


def test_the_state_survives_torch_save_and_a_weights_only_load():
    _seeded_mid_gaussian()
    buffer = io.BytesIO()
    torch.save(rng_states(), buffer)
    first = _draws()
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    set_rng_states(loaded)
    assert _draws() == first


def test_the_numpy_key_keeps_its_uint32_values():
    np.random.seed(2**31 + 5)
    saved = rng_states()
    name, keys, *_ = saved["numpy"]
    assert name == "MT19937" and keys.dtype == torch.int64
    assert np.array_equal(keys.numpy().astype(np.uint32), np.random.get_state()[1])
    assert int(keys.max()) >= 2**31  # values above int32 are not wrapped negative
