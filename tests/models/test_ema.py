"""hpcgan/models/ema.py: ema = d * ema + (1 - d) * model, the ramp-up min(decay, (1 + step) /
(rampup_steps + step)), and buffers copied as they are."""

import pytest
import torch
from torch import nn

from hpcgan.models.ema import update_ema


def pair(ema_value: float, model_value: float) -> tuple[nn.Module, nn.Module]:
    ema, model = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():
        for p in ema.parameters():
            p.fill_(ema_value)
        for p in model.parameters():
            p.fill_(model_value)
    return ema, model


def test_update_is_the_weighted_average_of_ema_and_model():
    ema, model = pair(1.0, 3.0)
    update_ema(ema, model, decay=0.9, step=100)
    for p in ema.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.9 * 1.0 + 0.1 * 3.0))


def test_update_with_random_parameters_per_element():
    torch.manual_seed(0)
    ema, model = nn.Linear(4, 3), nn.Linear(4, 3)
    before = [p.detach().clone() for p in ema.parameters()]
    update_ema(ema, model, decay=0.75, step=0)
    for e, b, m in zip(ema.parameters(), before, model.parameters(), strict=True):
        assert torch.allclose(e, 0.75 * b + 0.25 * m.detach())


def test_decay_zero_copies_the_model_and_decay_one_freezes_the_average():
    ema, model = pair(1.0, 3.0)
    update_ema(ema, model, decay=1.0, step=5)
    assert all(torch.all(p == 1.0) for p in ema.parameters())
    update_ema(ema, model, decay=0.0, step=5)
    assert all(torch.all(p == 3.0) for p in ema.parameters())


def test_repeated_updates_converge_geometrically():
    ema, model = pair(0.0, 1.0)
    for step in range(10):
        update_ema(ema, model, decay=0.5, step=step)
    # The gap to the model halves each time: 1 - 0.5^10.
    assert ema.weight[0, 0].item() == pytest.approx(1 - 0.5**10)


@pytest.mark.parametrize(("step", "rampup", "expected_decay"), [(0, 10, 0.1), (5, 10, 6 / 15), (990, 10, 0.99)])
def test_rampup_caps_the_decay_at_one_plus_step_over_rampup_plus_step(step, rampup, expected_decay):
    ema, model = pair(0.0, 1.0)
    update_ema(ema, model, decay=0.99, step=step, rampup_steps=rampup)
    # ema = d * 0 + (1 - d) * 1; at step 990 (1 + 990) / 1000 = 0.991 > 0.99, so the decay itself applies.
    assert ema.weight[0, 0].item() == pytest.approx(1 - expected_decay)


def test_without_rampup_the_decay_applies_from_step_zero():
    ema, model = pair(0.0, 1.0)
    update_ema(ema, model, decay=0.99, step=0, rampup_steps=0)
    assert ema.weight[0, 0].item() == pytest.approx(0.01)


def test_buffers_are_copied_not_averaged():
    ema, model = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        model.running_mean.fill_(5.0)
        model.num_batches_tracked.fill_(7)
    update_ema(ema, model, decay=0.9, step=100)
    assert torch.equal(ema.running_mean, torch.full((3,), 5.0))
    assert ema.num_batches_tracked.item() == 7


def test_update_leaves_the_model_and_autograd_alone():
    ema, model = pair(0.0, 1.0)
    update_ema(ema, model, decay=0.5, step=0)
    assert all(torch.all(p == 1.0) for p in model.parameters())
    assert all(p.grad is None for p in ema.parameters())
    assert not ema.weight.grad_fn


def test_mismatched_networks_are_refused():
    with pytest.raises(ValueError):
        update_ema(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), 0.9, 0)
