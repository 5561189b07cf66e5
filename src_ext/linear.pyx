# cython: language_level=3
"""The Linear layer's products, y = x W^T + b and its gradients, split across minigrad's kernel
workers (minigrad/fast/threads.py): worker w takes a contiguous share of the rows of x for y and dX,
and a share of the output features (in blocks of 8) for dW and db, inside one OpenMP region per
pass, as the recurrent kernels do (products.pxd), so the head of a language model uses every
core and never wakes a second thread pool. Each worker calls single-threaded BLAS on its share,
except in the backward pass of a float32 layer on an AVX-512 CPU: there dX and dW run on the
tile of mg_gemm.h, which reads W and the inputs in place (BLAS copies them into its panels
first), with BLAS for the edges the tile does not cover (the last O % 8 rows of dW, an input
size that is no multiple of 32). For y the tile is no faster than BLAS (benchmarks/RESULTS.md),
so y stays on BLAS.

Twins with the same signatures and numbered steps: minigrad/fast/_reference.py."""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy

from products cimport (input_gradient, matmul_nt, matmul_tn, packed_gemm_enabled,
                       weight_gradient)
from work_split cimport share

from minigrad.fast import _reference
from minigrad.fast._reference import _check_linear  # one set of argument checks
from minigrad.fast.threads import kernel_workers


cdef void _forward(const floating[:, ::1] x, const floating[:, ::1] w, const floating[::1] b,
                   bint has_bias, floating[:, ::1] y, Py_ssize_t k,
                   Py_ssize_t workers) noexcept nogil:
    cdef Py_ssize_t R = x.shape[0], I = x.shape[1], O = w.shape[0], r
    cdef Py_ssize_t r0 = share(R, k, workers), r1 = share(R, k + 1, workers)
    if r1 == r0:
        return
    # (1) y = x W^T + b   (the bias rows first, then one GEMM that adds onto them)
    if has_bias:
        for r in range(r0, r1):
            memcpy(&y[r, 0], &b[0], O * sizeof(floating))
    matmul_nt(<int>(r1 - r0), <int>O, <int>I, &x[r0, 0], &w[0, 0],
              1 if has_bias else 0, &y[r0, 0])


cdef void _backward(const floating[:, ::1] g, const floating[:, ::1] x,
                    const floating[:, ::1] w, const floating[::1] ones, floating[:, ::1] dx,
                    floating[:, ::1] dw, floating[::1] db, bint need_dx, bint need_dw,
                    bint need_db, bint tile, Py_ssize_t k, Py_ssize_t workers) noexcept nogil:
    cdef Py_ssize_t R = x.shape[0], I = x.shape[1], O = w.shape[0], blocks = (O + 7) // 8
    cdef Py_ssize_t r0 = share(R, k, workers), r1 = share(R, k + 1, workers)
    cdef Py_ssize_t o0 = min(O, 8 * share(blocks, k, workers))
    cdef Py_ssize_t o1 = min(O, 8 * share(blocks, k + 1, workers))
    # (2) dX = G W                 (this worker's rows)
    if need_dx and r1 > r0:
        input_gradient(<int>(r1 - r0), <int>I, <int>O, &g[r0, 0], &w[0, 0], &dx[r0, 0], tile)
    # (3) dW = G^T X               (this worker's output features, all rows)
    if need_dw and o1 > o0:
        weight_gradient(<int>(o1 - o0), <int>I, <int>R, &g[0, o0], <int>O, &x[0, 0], &dw[o0, 0],
                        tile)
    # (4) db = G^T 1               (the column sums, as a matrix-vector product)
    if need_db and o1 > o0:
        matmul_tn(<int>(o1 - o0), 1, <int>R, &g[0, o0], <int>O, &ones[0], 0, &db[o0])


def linear_forward(x, w, b):
    """y (R, O) = x (R, I) @ w (O, I)^T + b (O,) (b may be None)."""
    _check_linear("linear_forward", x, w, b)
    R, O = x.shape[0], w.shape[0]
    if R == 0 or O == 0 or x.shape[1] == 0:  # empty products: numpy's rules
        return _reference.linear_forward(x, w, b)
    y = np.empty((R, O), x.dtype)
    _run_forward(x, w, b, b is not None, y, kernel_workers(R))  # b may be None
    return y


def linear_backward(g, x, w, needs):
    """(dx (R, I), dw (O, I), db (O,)) for y = x w^T + b and dL/dy = g (R, O); each is None
    unless asked for by ``needs`` = (dx, dw, db)."""
    _check_linear("linear_backward", x, w, None, g)
    need_dx, need_dw, need_db = (bool(n) for n in needs)
    (R, I), O = x.shape, w.shape[0]
    if R == 0 or O == 0 or I == 0:  # empty products: numpy's rules
        return _reference.linear_backward(g, x, w, needs)
    dx = np.empty((R, I), x.dtype) if need_dx else None
    dw = np.empty((O, I), x.dtype) if need_dw else None
    db = np.empty(O, x.dtype) if need_db else None
    tile = x.dtype == np.float32 and packed_gemm_enabled()
    _run_backward(g, x, w, np.ones(R, x.dtype), dx, dw, db, need_dx, need_dw, need_db, tile,
                  kernel_workers(R))  # arrays not needed are None
    return dx, dw, db


def _run_forward(const floating[:, ::1] x, const floating[:, ::1] w, const floating[::1] b,
                 bint has_bias, floating[:, ::1] y, int workers):
    """(1) on every worker's rows (a fused def function: Cython picks the float or double
    build from the arrays)."""
    cdef int k
    with nogil:
        for k in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            _forward(x, w, b, has_bias, y, k, workers)


def _run_backward(const floating[:, ::1] g, const floating[:, ::1] x,
                  const floating[:, ::1] w, const floating[::1] ones, floating[:, ::1] dx,
                  floating[:, ::1] dw, floating[::1] db, bint need_dx, bint need_dw,
                  bint need_db, bint tile, int workers):
    """(2)-(4) on every worker's rows and output features."""
    cdef int k
    with nogil:
        for k in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            _backward(g, x, w, ones, dx, dw, db, need_dx, need_dw, need_db, tile, k, workers)
