"""hpcgan/train/guard.py: the divergence guard's policies (lr, reseed, both), retries counted until a
committed checkpoint, the budget running out with a UserError, bad settings refused, state round trip
(tests/test_train_guard.py runs it inside real training)."""

import pytest

from hpcgan.errors import UserError
from hpcgan.train.guard import POLICIES, DivergenceGuard


def test_the_documented_policies_exist():
    assert POLICIES == ("lr", "reseed", "both")


def test_lr_policy_multiplies_the_lr_scale_by_the_factor_each_time():
    guard = DivergenceGuard("lr", retries=3, lr_factor=0.5)
    assert "LR x0.5" in guard.diverged(step=10, rollback_to=5)
    assert "LR x0.25" in guard.diverged(step=12, rollback_to=5)
    assert guard.state.lr_scale == pytest.approx(0.25)
    assert guard.state.reseeds == 0


def test_reseed_policy_counts_reseeds_and_keeps_the_lr():
    guard = DivergenceGuard("reseed", retries=3, lr_factor=0.5)
    assert guard.diverged(10, 5) == "reseed #1"
    assert guard.diverged(11, 5) == "reseed #2"
    assert guard.state.lr_scale == 1.0 and guard.state.reseeds == 2


def test_both_policy_lowers_the_lr_and_reseeds():
    guard = DivergenceGuard("both", retries=2, lr_factor=0.1)
    message = guard.diverged(10, 5)
    assert "LR x0.1" in message and "reseed #1" in message
    assert guard.state.lr_scale == pytest.approx(0.1) and guard.state.reseeds == 1


def test_retries_are_counted_and_the_budget_runs_out_with_a_user_error():
    guard = DivergenceGuard("lr", retries=2, lr_factor=0.5)
    guard.diverged(10, 5)
    guard.diverged(11, 5)
    assert guard.state.tries == 2 and guard.state.rollbacks == 2
    with pytest.raises(UserError, match=r"diverged at step 12.*2 rollback\(s\) to step 5.*guard.retries=2"):
        guard.diverged(12, 5)
    assert guard.state.lr_scale == pytest.approx(0.25)  # the refused try changed nothing


def test_zero_retries_gives_up_at_the_first_divergence():
    guard = DivergenceGuard("both", retries=0, lr_factor=0.5)
    with pytest.raises(UserError, match="step 3"):
        guard.diverged(3, 0)
    assert guard.state.rollbacks == 0


def test_a_committed_checkpoint_resets_the_tries_but_not_the_run_total():
    guard = DivergenceGuard("lr", retries=1, lr_factor=0.5)
    guard.diverged(10, 5)
    guard.committed()
    assert guard.state.tries == 0
    guard.diverged(20, 15)  # would have raised without the commit
    assert guard.state.rollbacks == 2 and guard.state.lr_scale == pytest.approx(0.25)
    with pytest.raises(UserError):
        guard.diverged(21, 15)


def test_lr_factor_one_leaves_the_lr_alone():
    guard = DivergenceGuard("lr", retries=1, lr_factor=1.0)
    guard.diverged(1, 0)
    assert guard.state.lr_scale == 1.0


@pytest.mark.parametrize(
    ("policy", "retries", "lr_factor", "fragment"),
    [
        ("halve", 3, 0.5, "guard.policy=halve"),
        ("lr", -1, 0.5, "guard.retries"),
        ("lr", 3, 0.0, "lr_factor"),
        ("lr", 3, 1.5, "lr_factor"),
        ("lr", 3, -0.5, "lr_factor"),
    ],
)
def test_bad_settings_are_user_errors(policy, retries, lr_factor, fragment):
    with pytest.raises(UserError, match=fragment):
        DivergenceGuard(policy, retries, lr_factor)


def test_state_dict_round_trips_and_the_restored_guard_carries_on():
    a = DivergenceGuard("both", retries=3, lr_factor=0.5)
    a.diverged(10, 5)
    a.diverged(11, 5)
    state = a.state_dict()
    assert state == {"lr_scale": 0.25, "reseeds": 2, "tries": 2, "rollbacks": 2}
    b = DivergenceGuard("both", retries=3, lr_factor=0.5)
    b.load_state_dict(state)
    assert b.state_dict() == state
    assert a.diverged(12, 5) == b.diverged(12, 5)
    with pytest.raises(UserError):
        b.diverged(13, 5)  # the restored tries count against the same budget


def test_state_dict_is_a_copy():
    guard = DivergenceGuard("lr", retries=3, lr_factor=0.5)
    state = guard.state_dict()
    guard.diverged(1, 0)
    assert state["tries"] == 0
