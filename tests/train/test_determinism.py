"""hpcgan/train/determinism.py (train.deterministic): the three switches a bit-identical resume on a
GPU needs, set in a fresh process (they are process-wide); off leaves torch's defaults. The resume
itself is checked on a GPU by tests/test_cuda.py."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

PROBE = """
import json, os, sys, torch
from hpcgan.train.determinism import set_deterministic
set_deterministic(sys.argv[1] == "on")
print(json.dumps([os.environ.get("CUBLAS_WORKSPACE_CONFIG"), torch.are_deterministic_algorithms_enabled(),
                  torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.deterministic]))
"""


def probe(mode: str, **env: str) -> list:
    base = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=REPO,
                          env=base | env, timeout=120, check=True)  # fmt: skip
    return json.loads(proc.stdout)


@pytest.mark.parametrize(
    ("mode", "env", "expected"),
    [
        ("on", {}, [":4096:8", True, True, True]),  # ops without a deterministic kernel warn, not fail
        ("on", {"CUBLAS_WORKSPACE_CONFIG": ":16:8"}, [":16:8", True, True, True]),  # the user's own value wins
        ("off", {}, [None, False, False, False]),
    ],
)
def test_switches(mode, env, expected):
    assert probe(mode, **env) == expected


def test_the_key_is_off_by_default_and_outside_the_hash():
    """A run resumes with the switch flipped either way: it changes kernels, not the training."""
    from hpcgan.train.config import apply_overrides
    from hpcgan.train.presets import preset

    config = preset("r3gan64")
    assert config.train.deterministic is False
    assert apply_overrides(preset("r3gan64"), ["train.deterministic=true"]).hash() == config.hash()
