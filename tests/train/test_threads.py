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


@pytest.mark.parametrize(("omp", "expected"), [(None, "1"), ("3", "3")])
def test_a_process_pinned_to_one_core_takes_one_thread_unless_omp_num_threads_says(omp, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp:
        env["OMP_NUM_THREADS"] = omp
    out = subprocess.run([sys.executable, "-c", PROBE, "0"], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == expected
