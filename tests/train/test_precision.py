"""hpcgan/train/precision.py on CPU: auto resolves to fp32 (bf16 on CUDA), fp32 runs without autocast
or scaler, bf16 autocasts, fp16 gets one new scaler per network, unknown names are UserErrors."""

import contextlib

import pytest
import torch

from hpcgan.errors import UserError
from hpcgan.train.precision import PRECISIONS, Precision, resolve, scaler_state

CPU = torch.device("cpu")


def test_auto_is_fp32_on_cpu_and_bf16_on_cuda():
    assert resolve("auto", CPU) == "fp32"
    assert resolve("auto", torch.device("cuda")) == "bf16"  # only the device type is read


@pytest.mark.parametrize("name", ["fp32", "bf16", "fp16"])
def test_explicit_precisions_are_kept(name):
    assert resolve(name, CPU) == name == Precision(name, CPU).name


def test_unknown_precision_is_a_user_error_naming_it():
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp16")
    with pytest.raises(UserError, match="train.precision=fp8"):
        Precision("fp8", CPU)


def test_fp32_has_no_autocast_and_no_scaler():
    p = Precision("fp32", CPU)
    assert p.dtype is None and p.scaler() is None
    assert isinstance(p.autocast(), contextlib.nullcontext)
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with p.autocast():
        assert (a @ b).dtype == torch.float32


def test_bf16_autocasts_matmuls_and_has_no_scaler():
    p = Precision("bf16", CPU)
    assert p.dtype == torch.bfloat16 and p.scaler() is None
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with p.autocast():
        assert (a @ b).dtype == torch.bfloat16
    assert (a @ b).dtype == torch.float32  # only inside the context


def test_fp16_gives_a_new_scaler_per_call():
    p = Precision("fp16", CPU)
    assert p.dtype == torch.float16
    g_scaler, d_scaler = p.scaler(), p.scaler()
    assert isinstance(g_scaler, torch.amp.GradScaler) and g_scaler is not d_scaler


def test_scaler_state_is_empty_without_a_scaler_and_the_scalers_own_otherwise():
    assert scaler_state(None) == {}
    scaler = Precision("fp16", CPU).scaler()
    state = scaler_state(scaler)
    assert state == scaler.state_dict() and "scale" in state
