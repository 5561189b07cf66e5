"""How many threads minigrad uses: its own kernel workers, and the BLAS libraries under it.

Kernel workers. The fused recurrent kernels split the batch into contiguous row ranges, one per
worker (OpenMP threads, started by the compiled code): rows of a batch never interact in an RNN,
so each worker runs the whole time loop on its own rows, with no synchronisation per step. The
matrix products before and after the loop are split the same way (the weight gradients as one
partial sum per worker over its rows, added in worker order). The number of workers is
``set_num_threads(n)``, or MINIGRAD_NUM_THREADS, or OMP_NUM_THREADS, else the cores this process
may run on; never more than one per started block of 8 batch rows.

BLAS threads. Inside the kernels each worker calls BLAS on its own small matrices, where a BLAS
thread pool would only get in the way (and numpy and scipy each bring their own OpenBLAS pool,
whose idle threads spin and starve each other on a small machine). So when minigrad's kernels
first run (``minigrad.fast.kernels.apply_speed_settings``; importing minigrad changes nothing) the
BLAS libraries are set to one thread each, unless you set OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS or MKL_NUM_THREADS yourself or called ``set_blas_threads(n)`` before (then they
are left as they are); ``set_blas_threads(n)`` changes them at any time. Measurements:
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import os

from threadpoolctl import ThreadpoolController

_USER_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_blas_chosen = False  # set_blas_threads() was called: limit_blas_by_default leaves BLAS alone


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: expected a positive int, got {value!r}")
    return value


def _env_count(name: str) -> int | None:
    text = os.environ.get(name)
    if not text:
        return None
    try:
        return _positive_int(int(text), name)
    except ValueError:
        raise ValueError(f"{name} must be a positive int, got {text!r}") from None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def set_num_threads(n: int) -> None:
    """Split the fused recurrent kernels' work across ``n`` worker threads (as torch's)."""
    global _workers
    _workers = _positive_int(n, "set_num_threads")


def get_num_threads() -> int:
    """The number of worker threads the fused recurrent kernels use."""
    return _workers


ROWS_PER_TILE = 8  # the packed step product works on blocks of 8 rows (src_ext/mg_gemm.h)


def _one_worker_in_forked_child() -> None:
    # GNU OpenMP cannot start a thread team in a child forked after the parent used one (the
    # child hangs), so a forked child (multiprocessing's default on Linux) runs the kernels on
    # one thread. Processes started with "spawn" or "forkserver" keep the normal default.
    global _workers
    _workers = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_worker_in_forked_child)


def kernel_workers(batch: int) -> int:
    """Workers for a batch of ``batch`` rows: at most one per started block of 8 rows (a
    worker with fewer rows still pays for a whole block and streams all of W_hh every step),
    at least one."""
    return max(1, min(_workers, -(-batch // ROWS_PER_TILE)))


ELEMENTS_PER_WORKER = 16384  # an elementwise pass gives a worker at least this many elements


def elementwise_workers(elements: int) -> int:
    """Workers for an elementwise pass over ``elements`` numbers (e.g. a multi-tensor Adam
    step): one per ELEMENTS_PER_WORKER of them, so that waking a worker (a few microseconds)
    costs less than the share it takes over; at least one."""
    return max(1, min(_workers, elements // ELEMENTS_PER_WORKER))


def _blas_controller():
    return ThreadpoolController().select(user_api="blas")


def set_blas_threads(n: int) -> None:
    """Use ``n`` threads in every BLAS library loaded in this process (numpy's and scipy's)."""
    global _blas_chosen
    _positive_int(n, "set_blas_threads")
    _blas_controller().limit(limits=n)
    _blas_chosen = True


def get_blas_threads() -> dict[str, int]:
    """BLAS library file name -> its thread count, for every BLAS loaded in this process."""
    return {os.path.basename(lib.filepath): lib.num_threads
            for lib in _blas_controller().lib_controllers}


def default_workers() -> int:
    """The worker count from MINIGRAD_NUM_THREADS, else OMP_NUM_THREADS, else the usable cores."""
    return (_env_count("MINIGRAD_NUM_THREADS") or _env_count("OMP_NUM_THREADS")
            or usable_cores())


def limit_blas_by_default() -> bool:
    """BLAS at one thread, unless the user set a BLAS variable or called set_blas_threads;
    True when it changed them. Called once, when the kernels first
    run (minigrad.fast.kernels.apply_speed_settings), not at import."""
    if _blas_chosen or any(os.environ.get(var) for var in _USER_BLAS_VARS):
        return False
    _blas_controller().limit(limits=1)
    return True


_workers = default_workers()  # reads the environment only; set_num_threads() changes it
