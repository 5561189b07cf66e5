"""Thread policy: kernel workers default to the usable cores (or the user's variables), BLAS
starts at one thread unless the user chose, and the setters work. Each environment case runs in
a fresh interpreter."""
import json
import os
import subprocess
import sys

import pytest

import minigrad
from minigrad.fast import threads

_PROBE = ("import json, minigrad, minigrad.fast.kernels; minigrad.fast.kernels.apply_speed_settings(); "
          "print(json.dumps([minigrad.get_num_threads(), "
          "sorted(set(minigrad.fast.threads.get_blas_threads().values()))]))")
_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINIGRAD_NUM_THREADS")


def _counts(**env: str):
    """(kernel workers, sorted distinct BLAS thread counts) in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if k not in _VARS}
    clean.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         env=clean, timeout=120)
    assert out.returncode == 0, out.stderr
    workers, blas = json.loads(out.stdout.strip().splitlines()[-1])
    return workers, blas


needs_threadpoolctl = pytest.mark.skipif(
    threads.ThreadpoolController is None, reason="BLAS thread control needs threadpoolctl")


@needs_threadpoolctl
def test_default_workers_are_the_cores_and_blas_is_one_thread():
    assert _counts() == (threads.usable_cores(), [1])


@needs_threadpoolctl
def test_minigrad_num_threads_sets_the_workers_not_blas():
    assert _counts(MINIGRAD_NUM_THREADS="3") == (3, [1])


@needs_threadpoolctl
def test_omp_num_threads_sets_the_workers_and_leaves_blas_alone():
    assert _counts(OMP_NUM_THREADS="2") == (2, [2])


@needs_threadpoolctl
def test_a_user_blas_variable_is_left_alone():
    workers, blas = _counts(OPENBLAS_NUM_THREADS="2")
    assert (workers, blas) == (threads.usable_cores(), [2])


def test_bad_environment_value_names_the_variable():
    clean = {k: v for k, v in os.environ.items() if k not in _VARS}
    clean["MINIGRAD_NUM_THREADS"] = "many"
    out = subprocess.run([sys.executable, "-c", "import minigrad.fast.kernels"], capture_output=True,
                         text=True, env=clean, timeout=120)
    assert out.returncode != 0 and "MINIGRAD_NUM_THREADS" in out.stderr


def test_set_num_threads_and_kernel_workers():
    before = minigrad.get_num_threads()
    try:
        minigrad.set_num_threads(3)
        assert minigrad.get_num_threads() == 3
        assert threads.kernel_workers(32) == 3
        assert threads.kernel_workers(9) == 2  # one worker per started block of 8 rows
        assert threads.kernel_workers(8) == 1
        assert threads.kernel_workers(0) == 1
    finally:
        minigrad.set_num_threads(before)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads"):
            minigrad.set_num_threads(bad)


@needs_threadpoolctl
def test_set_blas_threads_changes_every_blas():
    code = ("import json, minigrad; minigrad.set_blas_threads(2); "
            "print(json.dumps(sorted(set(minigrad.fast.threads.get_blas_threads().values()))))")
    clean = {k: v for k, v in os.environ.items() if k not in _VARS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=clean, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2]
    with pytest.raises(ValueError, match="set_blas_threads"):
        minigrad.set_blas_threads(0)


_FORK_SCRIPT = """
import multiprocessing as mp
import numpy as np
import minigrad as mg
import minigrad.nn as nn

def run(_=None):
    mg.manual_seed(0)
    lstm = nn.LSTM(8, 16)
    x = mg.Tensor(np.ones((5, 32, 8), np.float32), requires_grad=True)
    out = lstm(x)[0]
    out.sum().backward()
    return float(out.data.sum()), mg.get_num_threads()

mg.set_num_threads(2)
parent = run()
with mp.get_context("fork").Pool(2) as pool:
    children = pool.map(run, range(2))
assert all(abs(c[0] - parent[0]) < 1e-4 and c[1] == 1 for c in children), (parent, children)
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_run_the_kernels_on_one_thread_instead_of_hanging():
    out = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
