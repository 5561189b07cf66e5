"""How many threads the BLAS libraries under minigrad use.

The fused recurrent kernels call BLAS once per time step on small matrices (batch x hidden),
where waking a thread pool costs more than it saves; and numpy and scipy each bring their own
OpenBLAS pool, whose idle threads spin and starve each other on a small machine. Measured on a
2-core machine (benchmarks/RESULTS.md), one BLAS thread is faster for a whole LSTM training step
at every hidden size up to 256 and equal at 512. So minigrad starts with one BLAS thread unless
you chose otherwise: set MINIGRAD_NUM_THREADS, or OPENBLAS_NUM_THREADS / OMP_NUM_THREADS (then
minigrad leaves the libraries as they are), or call ``set_num_threads(n)`` at any time.
"""
from __future__ import annotations

import os

try:  # optional at run time: without it minigrad leaves the thread counts alone
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
    ThreadpoolController = None

_USER_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _blas_controller():
    if ThreadpoolController is None:
        return None
    return ThreadpoolController().select(user_api="blas")


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in every BLAS library loaded in this process (numpy's and scipy's)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    controller = _blas_controller()
    if controller is None:
        raise RuntimeError("set_num_threads needs threadpoolctl: pip install threadpoolctl")
    controller.limit(limits=n)


def get_num_threads() -> dict[str, int]:
    """BLAS library file name -> its thread count, for every BLAS loaded in this process."""
    controller = _blas_controller()
    if controller is None:
        return {}
    return {os.path.basename(lib.filepath): lib.num_threads for lib in controller.lib_controllers}


def apply_default() -> None:
    """At import: MINIGRAD_NUM_THREADS if set, else 1 unless the user set a BLAS variable."""
    requested = os.environ.get("MINIGRAD_NUM_THREADS")
    if requested:
        try:
            count = int(requested)
        except ValueError:
            raise ValueError(f"MINIGRAD_NUM_THREADS must be a positive int, got "
                             f"{requested!r}") from None
        set_num_threads(count)
    elif not any(os.environ.get(var) for var in _USER_VARS) and ThreadpoolController is not None:
        set_num_threads(1)
