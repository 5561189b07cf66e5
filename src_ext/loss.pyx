# cython: language_level=3
"""Fused softmax cross-entropy kernels over rows of (N, C) logits (twins in
minigrad/fast/_reference.py, derivation steps numbered identically).

The rows are split across minigrad's kernel workers (minigrad/fast/threads.py), one OpenMP region
per pass. exp is rnn_common's branch-free exp_, whose loop the compiler vectorises: 4 floats
wide in this portable build, 16 in loss_avx512 (the same code built for AVX-512 CPUs, which
minigrad.fast.kernels loads instead where it can run)."""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log

from rnn_common cimport exp_
from work_split cimport share

# one set of argument checks
from minigrad.fast._reference import _check_xent, _check_xent_backward
from minigrad.fast.threads import kernel_workers


cdef void _forward_rows(const floating[:, ::1] x, const long long[::1] target,
                        long long ignore_index, floating[::1] loss, floating[:, ::1] probs,
                        Py_ssize_t k, Py_ssize_t workers) noexcept nogil:
    # Worker k's share of the rows. Four partial maxima break the dependency chain of the
    # comparisons; the sum uses four partial sums in double.
    cdef Py_ssize_t n, c, n_classes = x.shape[1]
    cdef Py_ssize_t n4 = n_classes - n_classes % 4
    cdef Py_ssize_t r0 = share(x.shape[0], k, workers), r1 = share(x.shape[0], k + 1, workers)
    cdef floating m, m0, m1, m2, m3, inv
    cdef double s, s0, s1, s2, s3, lse
    cdef const floating* xr
    cdef floating* pr
    for n in range(r0, r1):
        xr = &x[n, 0]
        pr = &probs[n, 0]
        # (1) m = max_c x_c                       (shift: exp never overflows)
        m0 = m1 = m2 = m3 = xr[0]
        for c in range(0, n4, 4):
            m0 = xr[c] if xr[c] > m0 else m0
            m1 = xr[c + 1] if xr[c + 1] > m1 else m1
            m2 = xr[c + 2] if xr[c + 2] > m2 else m2
            m3 = xr[c + 3] if xr[c + 3] > m3 else m3
        for c in range(n4, n_classes):
            m0 = xr[c] if xr[c] > m0 else m0
        m = m0 if m0 > m1 else m1
        m2 = m2 if m2 > m3 else m3
        m = m if m > m2 else m2
        for c in range(n_classes):
            pr[c] = exp_(xr[c] - m)
        # (2) s = sum_c exp(x_c - m)
        s0 = s1 = s2 = s3 = 0.0
        for c in range(0, n4, 4):
            s0 += pr[c]
            s1 += pr[c + 1]
            s2 += pr[c + 2]
            s3 += pr[c + 3]
        for c in range(n4, n_classes):
            s0 += pr[c]
        s = (s0 + s1) + (s2 + s3)
        # (3) lse = m + log(s)                    (log-sum-exp)
        lse = m + log(s)
        # (4) p_c = exp(x_c - m) / s
        inv = <floating>(1.0 / s)
        for c in range(n_classes):
            pr[c] = pr[c] * inv
        # (5) loss = lse - x_t ; 0 for rows whose target == ignore_index.
        if target[n] == ignore_index:
            loss[n] = 0
        else:
            loss[n] = <floating>(lse - xr[target[n]])


cdef void _xent_backward(const floating[:, ::1] probs, const long long[::1] target,
                         long long ignore_index, const floating[::1] grad_rows,
                         floating[:, ::1] dx, Py_ssize_t k, Py_ssize_t workers) noexcept nogil:
    # Worker k's share of the rows. dx may be probs itself: each element is read before it is
    # written.
    cdef Py_ssize_t n, c, t, n_rows = probs.shape[0], n_classes = probs.shape[1]
    cdef Py_ssize_t r0 = share(n_rows, k, workers), r1 = share(n_rows, k + 1, workers)
    cdef floating g, p_t
    for n in range(r0, r1):
        if target[n] == ignore_index:
            for c in range(n_classes):
                dx[n, c] = 0
            continue
        # (6) d loss / d x_c = p_c - [c == t]
        # (7) dx = grad_rows[n] * (p - onehot(t)) ; 0 for ignored rows.
        g = grad_rows[n]
        t = target[n]
        p_t = probs[n, t]
        for c in range(n_classes):
            dx[n, c] = g * probs[n, c]
        dx[n, t] = g * (p_t - 1)


def softmax_xent_forward(logits, target, long long ignore_index):
    """(loss_rows (N,), probs (N, C)) for logits (N, C) and int64 target (N,)."""
    _check_xent("softmax_xent_forward", logits, target, ignore_index)
    if logits.shape[1] == 0:
        raise ValueError(f"softmax_xent_forward: logits {logits.shape} have no classes")
    loss = np.empty(logits.shape[0], dtype=logits.dtype)
    probs = np.empty_like(logits)
    _run_forward(logits, target, ignore_index, loss, probs, kernel_workers(logits.shape[0]))
    return loss, probs


def softmax_xent_backward(probs, target, long long ignore_index, grad_rows, out=None):
    """d logits (N, C) = grad_rows[:, None] * (probs - onehot(target)), 0 on ignored rows.

    Written into ``out`` when given (an (N, C) C-contiguous array of probs' dtype; it may be
    ``probs`` itself, to reuse its memory once the probabilities are no longer needed)."""
    _check_xent_backward(probs, target, ignore_index, grad_rows, out)
    if out is None:
        out = np.empty_like(probs)
    _run_backward(probs, target, ignore_index, grad_rows, out, kernel_workers(probs.shape[0]))
    return out


def _run_forward(const floating[:, ::1] x, const long long[::1] target,
                 long long ignore_index, floating[::1] loss, floating[:, ::1] probs,
                 int workers):
    """The forward on every worker's rows (a fused def function: Cython picks the float or
    double build from the arrays)."""
    cdef int k
    with nogil:
        for k in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            _forward_rows(x, target, ignore_index, loss, probs, k, workers)


def _run_backward(const floating[:, ::1] probs, const long long[::1] target,
                  long long ignore_index, const floating[::1] grad_rows, floating[:, ::1] dx,
                  int workers):
    """The backward on every worker's rows."""
    cdef int k
    with nogil:
        for k in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            _xent_backward(probs, target, ignore_index, grad_rows, dx, k, workers)
