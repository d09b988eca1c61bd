"""hpcgan/train/step_schedules.py: the LRs a step gets (cosine decay, the fine-tune phase by fraction
or by step, the guard's scale), Adam's betas, RMSprop left alone, the R1/R2 factor with lazy
regularisation, and the log fields."""

import math

import pytest
import torch

from hpcgan.train.config import RunConfig
from hpcgan.train.presets import preset
from hpcgan.train.schedules import Schedules
from hpcgan.train.step_schedules import StepSchedules


def _at(progress, horizon=1000):
    s = Schedules(horizon)
    s.advance(round(progress * horizon))
    return s


def _optimizers(name="adam"):
    make = {"adam": lambda p: torch.optim.Adam(p, lr=1.0), "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1.0)}[name]
    return make([torch.nn.Parameter(torch.zeros(2))]), make([torch.nn.Parameter(torch.zeros(2))])


def _lrs(config, step=0, progress=0.0, guard=1.0):
    opt_g, opt_d = _optimizers(config.optim.name)
    StepSchedules(config, _at(progress)).set_optimizers(step, opt_g, opt_d, guard)
    return opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"]


def test_the_starting_lrs_are_the_configs():
    c = preset("dcgan64")
    c.optim.lr_g, c.optim.lr_d = 3e-4, 1e-4
    assert _lrs(c) == (pytest.approx(3e-4), pytest.approx(1e-4))


@pytest.mark.parametrize(
    ("progress", "factor"),
    [(0.0, 1.0), (0.25, 0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2), (0.5, 0.6), (1.0, 0.2), (2.0, 0.2)],
)
def test_the_lr_decays_on_a_cosine_to_lr_decay(progress, factor):
    c = preset("dcgan64")
    c.optim.lr_g, c.optim.lr_d, c.optim.lr_decay = 1e-3, 2e-3, 0.2
    assert _lrs(c, progress=progress) == (pytest.approx(1e-3 * factor), pytest.approx(2e-3 * factor))


def test_the_finetune_phase_starts_at_a_fraction_of_the_steps():
    c = preset("dcgan64")
    c.train.steps, c.optim.finetune_from, c.optim.finetune_scale = 1000, 0.5, 0.1
    assert _lrs(c, step=499)[0] == pytest.approx(2e-4)
    assert _lrs(c, step=500)[0] == pytest.approx(2e-5)
    assert _lrs(c, step=999)[1] == pytest.approx(2e-5)


def test_the_finetune_phase_starts_at_an_absolute_step():
    c = RunConfig()
    c.train.steps, c.optim.finetune_from, c.optim.finetune_scale = 1000, 600, 0.25
    assert _lrs(c, step=599)[0] == pytest.approx(2e-4)
    assert _lrs(c, step=600)[0] == pytest.approx(5e-5)


def test_finetune_from_zero_is_off():
    c = preset("dcgan64")
    c.optim.finetune_from, c.optim.finetune_scale = 0, 0.1
    assert _lrs(c, step=0)[0] == pytest.approx(2e-4) and _lrs(c, step=999)[0] == pytest.approx(2e-4)


def test_the_guards_lr_scale_multiplies_both_lrs():
    c = preset("dcgan64")
    assert _lrs(c, guard=0.25) == (pytest.approx(5e-5), pytest.approx(5e-5))


def test_decay_finetune_and_guard_multiply():
    c = preset("dcgan64")
    c.train.steps, c.optim.finetune_from, c.optim.finetune_scale, c.optim.lr_decay = 100, 0.5, 0.1, 0.2
    assert _lrs(c, step=60, progress=0.5, guard=0.5)[0] == pytest.approx(2e-4 * 0.1 * 0.5 * 0.6)


def test_a_second_call_sets_the_lr_afresh_rather_than_compounding():
    c = preset("dcgan64")
    opt_g, opt_d = _optimizers()
    schedules = StepSchedules(c, _at(0.0))
    schedules.set_optimizers(0, opt_g, opt_d, 0.5)
    schedules.set_optimizers(1, opt_g, opt_d, 0.5)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_adam_gets_beta1_and_the_scheduled_beta2():
    c = preset("dcgan64")
    c.optim.beta1, c.optim.beta2_start, c.optim.beta2 = 0.0, 0.9, 0.99
    opt_g, opt_d = _optimizers("adam")
    StepSchedules(c, _at(0.5)).set_optimizers(0, opt_g, opt_d, 1.0)
    for opt in (opt_g, opt_d):
        beta1, beta2 = opt.param_groups[0]["betas"]
        assert beta1 == 0.0 and beta2 == pytest.approx(0.945)  # halfway between 0.9 and 0.99


def test_adam_without_a_warmup_gets_beta2_throughout():
    c = preset("dcgan64")
    c.optim.beta1, c.optim.beta2 = 0.5, 0.999
    opt_g, opt_d = _optimizers("adam")
    StepSchedules(c, _at(0.3)).set_optimizers(0, opt_g, opt_d, 1.0)
    assert opt_g.param_groups[0]["betas"] == (0.5, 0.999)


def test_rmsprop_gets_its_lr_and_no_betas():
    c = preset("dcgan64")
    c.optim.name, c.optim.beta2_start = "rmsprop", 0.9
    opt_g, opt_d = _optimizers("rmsprop")
    before = {k: v for k, v in opt_g.param_groups[0].items() if k not in ("params", "lr")}
    StepSchedules(c, _at(0.5)).set_optimizers(0, opt_g, opt_d, 1.0)
    group = opt_g.param_groups[0]
    assert "betas" not in group and "betas" not in opt_d.param_groups[0]
    assert {k: v for k, v in group.items() if k not in ("params", "lr")} == before
    assert group["lr"] == pytest.approx(2e-4)


def _gamma(penalty_every=1, gamma_decay=1.0, r1=1.0, r2=0.0, progress=0.0):
    c = preset("dcgan64")
    c.loss.penalty_every, c.loss.gamma_decay, c.loss.r1_gamma, c.loss.r2_gamma = penalty_every, gamma_decay, r1, r2
    return StepSchedules(c, _at(progress))


def test_gamma_scale_is_one_every_step_by_default():
    s = _gamma()
    assert [s.gamma_scale(step) for step in range(5)] == [1.0] * 5


def test_lazy_regularisation_runs_every_kth_step_k_times_as_strong():
    s = _gamma(penalty_every=4)
    assert [s.gamma_scale(step) for step in range(9)] == [4.0, 0, 0, 0, 4.0, 0, 0, 0, 4.0]


def test_lazy_regularisation_carries_the_gamma_decay():
    s = _gamma(penalty_every=4, gamma_decay=0.5, progress=0.5)  # factor 0.5 + 0.5 / 2 = 0.75
    assert s.gamma_scale(8) == pytest.approx(3.0)
    assert s.gamma_scale(9) == 0.0


def test_log_fields_report_the_gamma_factor_while_it_decays():
    assert _gamma(gamma_decay=0.2, progress=0.5).log_fields() == {"gamma_scale": pytest.approx(0.6)}
    assert _gamma(gamma_decay=0.2, r1=0.0, r2=2.0, progress=1.0).log_fields() == {"gamma_scale": pytest.approx(0.2)}


def test_no_log_fields_without_a_decay_or_without_a_penalty():
    assert _gamma(gamma_decay=1.0, progress=0.5).log_fields() == {}
    assert _gamma(gamma_decay=0.2, r1=0.0, r2=0.0, progress=0.5).log_fields() == {}
