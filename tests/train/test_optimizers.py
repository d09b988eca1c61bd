"""hpcgan/train/optimizers.py: Adam or RMSprop by optim.name with G's or D's LR and the betas, a
refused name, and the parameter digest (parameters count, buffers do not)."""

import pytest
import torch
from torch import nn

from hpcgan.errors import UserError
from hpcgan.train.config import OptimConfig
from hpcgan.train.optimizers import make_optimizer, param_digest


def _optim(**fields):
    o = OptimConfig()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))


def test_adam_for_g_gets_lr_g_and_the_betas():
    opt = make_optimizer(_optim(lr_g=3e-4, lr_d=1e-4, beta1=0.0, beta2=0.99), _net(), "g")
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]["lr"] == 3e-4 and opt.param_groups[0]["betas"] == (0.0, 0.99)


def test_adam_for_d_gets_lr_d():
    opt = make_optimizer(_optim(lr_g=3e-4, lr_d=1e-4), _net(), "d")
    assert opt.param_groups[0]["lr"] == 1e-4


def test_adam_moves_every_parameter_of_the_network():
    net = _net()
    opt = make_optimizer(_optim(), net, "g")
    assert [p for group in opt.param_groups for p in group["params"]] == list(net.parameters())


def test_rmsprop_gets_the_lr_and_its_default_alpha():
    opt = make_optimizer(_optim(name="rmsprop", lr_g=5e-5, lr_d=7e-5), _net(), "d")
    assert type(opt) is torch.optim.RMSprop
    assert opt.param_groups[0]["lr"] == 7e-5 and opt.param_groups[0]["alpha"] == 0.99
    assert "betas" not in opt.param_groups[0]


def test_another_name_is_refused_with_the_choices():
    with pytest.raises(UserError, match="expected adam or rmsprop"):
        make_optimizer(_optim(name="sgd"), _net(), "g")


def test_the_digest_is_16_hex_digits_and_equal_for_equal_weights():
    digest = param_digest(_net(seed=1))
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert param_digest(_net(seed=1)) == digest


def test_the_digest_changes_when_one_parameter_changes():
    net = _net()
    before = param_digest(net)
    with torch.no_grad():
        net[2].bias[0] += 1e-3
    assert param_digest(net) != before


def test_the_digest_ignores_buffers():
    net = _net()
    before = param_digest(net)
    net[1].running_mean.fill_(5.0)  # BatchNorm statistics differ per rank
    net[1].num_batches_tracked += 3
    assert param_digest(net) == before


def test_the_digest_tells_apart_values_moved_between_parameters():
    a, b = _net(), _net()
    with torch.no_grad():  # same bytes overall, in a different parameter
        a[0].bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        a[1].weight.copy_(torch.tensor([5.0, 6.0, 7.0, 8.0]))
        b[0].bias.copy_(torch.tensor([5.0, 6.0, 7.0, 8.0]))
        b[1].weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert param_digest(a) != param_digest(b)
