"""The torch thread budget: the cores a process may use, shared by local ranks, minus loader workers."""

import os
import subprocess
import sys

import pytest

from hpcgan.train.threads import thread_budget

PROBE = """
import os, sys
os.sched_setaffinity(0, {0})
from hpcgan.train.threads import set_torch_threads
print(set_torch_threads(int(sys.argv[1])))
"""


def test_budget_is_the_share_of_usable_cores_minus_workers():
    cores = len(os.sched_getaffinity(0))
    assert thread_budget(0) == cores
    assert thread_budget(0, local_ranks=cores) == 1
    assert thread_budget(cores + 3) == 1  # never below one


def probe(code: str, omp: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp:
        env["OMP_NUM_THREADS"] = omp
    return subprocess.run([sys.executable, "-c", code, "0"], capture_output=True, text=True, env=env,
                          check=True).stdout.strip()  # fmt: skip


def test_a_process_pinned_to_one_core_takes_one_thread():
    assert probe(PROBE, None) == "1"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to tell the cases apart")
def test_omp_num_threads_wins_over_the_budget():
    """torch alone, with the same environment, takes what set_torch_threads leaves it."""
    untouched = "import torch; print(torch.get_num_threads())"
    assert probe(PROBE, "2") == probe(untouched, "2") != "1"
