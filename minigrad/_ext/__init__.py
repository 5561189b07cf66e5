"""Compiled Cython kernels (built from src_ext/*.pyx by setup.py).

Importing this package (before any kernel module) loads GNU OpenMP, which the kernels' worker
threads run on, with a short spin: GNU OpenMP reads GOMP_SPINCOUNT once, when it is loaded,
and by default an idle worker busy-waits for up to 300,000 spins (milliseconds) after each
parallel region. Between the kernels, minigrad's Python runs on one core; the spinning worker
holds the other, so on a machine where anything else runs (another process, PyTorch's
threads) the worker takes the core the work needed, and two workers ran the char-LM step 2-3x
slower than one (benchmarks/bench_load.py, RESULTS.md). So, when the user set neither
OMP_WAIT_POLICY nor GOMP_SPINCOUNT and GNU OpenMP is not loaded yet, GOMP_SPINCOUNT is set to
SPIN_COUNT while the library loads and removed right after: the user's environment (and any
child process's) stays as it was. If it was already loaded (e.g. PyTorch imported first, which
shares the library), its spin count stays; set OMP_WAIT_POLICY=passive yourself then.
"""
from __future__ import annotations

import ctypes
import os

SPIN_COUNT = 1000  # spins (tens of microseconds) before an idle worker sleeps
_USER_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _gomp_loaded() -> bool | None:
    """Whether GNU OpenMP is mapped into this process (None: cannot tell, not Linux)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return None


def load_openmp_with_short_spin() -> bool:
    """Load GNU OpenMP with GOMP_SPINCOUNT = SPIN_COUNT unless the user chose a wait policy or
    it is loaded already (see the module docstring); True when it did."""
    if any(var in os.environ for var in _USER_VARS) or _gomp_loaded() is not False:
        return False
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:  # no GNU OpenMP here (another compiler's build): nothing to do
        return False
    finally:
        del os.environ["GOMP_SPINCOUNT"]
    return True


SHORT_SPIN = load_openmp_with_short_spin()
