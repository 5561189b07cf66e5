"""minigrad loads GNU OpenMP with a short spin (minigrad/_ext/__init__.py), so its idle worker
threads sleep instead of holding a core between kernels; the user's environment is left as
it was, and a wait policy the user chose is kept. Each check runs in a fresh interpreter
(GNU OpenMP reads its settings once, when it is loaded)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="GNU OpenMP and /proc/self/maps: Linux")


def run(code: str, **env: str) -> str:
    """stdout of ``code`` run by a fresh interpreter from the worktree, with the environment
    minus any OpenMP wait setting, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    base.update(env, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def compiled() -> bool:
    return run("import minigrad; print(minigrad.backend())") == "compiled"


REPORT = ("import os, subprocess, sys, minigrad, minigrad._ext as e; "
          "child = subprocess.run([sys.executable, '-c', "
          "'import os; print(os.environ.get(\"GOMP_SPINCOUNT\"))'], capture_output=True, "
          "text=True).stdout.strip(); "
          "print(e.SHORT_SPIN, os.environ.get('GOMP_SPINCOUNT'), child)")


def test_short_spin_is_set_while_openmp_loads_and_the_environment_restored():
    if not compiled():
        pytest.skip("the compiled extension is not built")
    assert run(REPORT) == "True None None"


def test_a_wait_policy_the_user_set_is_kept():
    assert run(REPORT, GOMP_SPINCOUNT="5") == "False 5 5"
    assert run(REPORT, OMP_WAIT_POLICY="active") == "False None None"


def test_openmp_loaded_before_minigrad_is_left_alone():
    pytest.importorskip("torch")
    if not compiled():
        pytest.skip("the compiled extension is not built")
    # torch brings GNU OpenMP (the same library by its soname): its spin count is already read
    assert run("import torch, minigrad._ext as e; print(e.SHORT_SPIN)") == "False"


BURN = """
import time
import numpy as np
import minigrad
import minigrad.nn as nn
minigrad.set_num_threads(2)
lstm = nn.LSTM(32, 32)
x = minigrad.Tensor(np.ones((4, 32, 32), np.float32))
lstm(x)
burnt = 0.0
for _ in range(10):
    lstm(x)  # a parallel region on two workers, then the main thread sleeps
    c0 = time.process_time()
    time.sleep(0.03)
    burnt += time.process_time() - c0
print(burnt)
"""


def test_idle_workers_do_not_burn_a_core_between_kernels():
    """CPU time of the whole process while its main thread sleeps after a two-worker kernel
    call: the idle worker's spinning. With GNU OpenMP's default (300,000 spins) this was 17-20
    ms over the ten sleeps here; with the short spin, under 1 ms."""
    if not compiled():
        pytest.skip("the compiled extension is not built")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores")
    assert float(run(BURN)) < 0.008
