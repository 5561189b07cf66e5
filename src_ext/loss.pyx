# cython: language_level=3
"""Fused softmax cross-entropy kernels over rows of (N, C) logits (twins in
minigrad/_reference.py, derivation steps numbered identically).

The forward pass is two compiled row loops around one call of numpy's exp: numpy picks the
widest SIMD exp the CPU has at run time (AVX-512 / AVX2), while this extension is compiled
for the baseline instruction set, so the exp of all N*C shifted logits is fastest there."""
import numpy as np

from cython cimport floating
from libc.math cimport log

from minigrad._reference import _check_xent, _check_xent_backward  # one set of argument checks


cdef void _shift_by_row_max(const floating[:, ::1] x, floating[::1] row_max,
                            floating[:, ::1] z) noexcept nogil:
    # Four partial maxima break the dependency chain of the comparisons.
    cdef Py_ssize_t n, c, n_rows = x.shape[0], n_classes = x.shape[1]
    cdef Py_ssize_t n4 = n_classes - n_classes % 4
    cdef floating m, m0, m1, m2, m3
    cdef const floating* xr
    cdef floating* zr
    for n in range(n_rows):
        xr = &x[n, 0]
        zr = &z[n, 0]
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
        row_max[n] = m
        for c in range(n_classes):
            zr[c] = xr[c] - m


cdef void _normalise_rows(const floating[:, ::1] x, const long long[::1] target,
                          long long ignore_index, const floating[::1] row_max,
                          floating[::1] loss, floating[:, ::1] probs) noexcept nogil:
    # probs holds exp(x - m) on entry. The sum uses four partial sums in double.
    cdef Py_ssize_t n, c, n_rows = x.shape[0], n_classes = x.shape[1]
    cdef Py_ssize_t n4 = n_classes - n_classes % 4
    cdef floating inv
    cdef double s, s0, s1, s2, s3, lse
    cdef floating* pr
    for n in range(n_rows):
        pr = &probs[n, 0]
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
        lse = row_max[n] + log(s)
        # (4) p_c = exp(x_c - m) / s
        inv = <floating>(1.0 / s)
        for c in range(n_classes):
            pr[c] = pr[c] * inv
        # (5) loss = lse - x_t ; 0 for rows whose target == ignore_index.
        if target[n] == ignore_index:
            loss[n] = 0
        else:
            loss[n] = <floating>(lse - x[n, target[n]])


cdef void _xent_backward(const floating[:, ::1] probs, const long long[::1] target,
                         long long ignore_index, const floating[::1] grad_rows,
                         floating[:, ::1] dx) noexcept nogil:
    # dx may be probs itself: each element is read before it is written.
    cdef Py_ssize_t n, c, t, n_rows = probs.shape[0], n_classes = probs.shape[1]
    cdef floating g, p_t
    for n in range(n_rows):
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
    row_max = np.empty(logits.shape[0], dtype=logits.dtype)
    probs = np.empty_like(logits)
    cdef const float[:, ::1] xf
    cdef const double[:, ::1] xd
    cdef float[::1] mf, lf
    cdef double[::1] md, ld
    cdef float[:, ::1] pf
    cdef double[:, ::1] pd
    cdef const long long[::1] t = target
    cdef bint single = logits.dtype == np.float32
    if single:
        xf, mf, lf, pf = logits, row_max, loss, probs
        with nogil:
            _shift_by_row_max(xf, mf, pf)
    else:
        xd, md, ld, pd = logits, row_max, loss, probs
        with nogil:
            _shift_by_row_max(xd, md, pd)
    np.exp(probs, out=probs)  # exp(x_c - m), in place
    if single:
        with nogil:
            _normalise_rows(xf, t, ignore_index, mf, lf, pf)
    else:
        with nogil:
            _normalise_rows(xd, t, ignore_index, md, ld, pd)
    return loss, probs


def softmax_xent_backward(probs, target, long long ignore_index, grad_rows, out=None):
    """d logits (N, C) = grad_rows[:, None] * (probs - onehot(target)), 0 on ignored rows.

    Written into ``out`` when given (an (N, C) C-contiguous array of probs' dtype; it may be
    ``probs`` itself, to reuse its memory once the probabilities are no longer needed)."""
    _check_xent_backward(probs, target, ignore_index, grad_rows, out)
    if out is None:
        out = np.empty_like(probs)
    cdef const float[:, ::1] pf
    cdef const double[:, ::1] pd
    cdef const float[::1] gf
    cdef const double[::1] gd
    cdef float[:, ::1] df
    cdef double[:, ::1] dd
    cdef const long long[::1] t = target
    if probs.dtype == np.float32:
        pf, gf, df = probs, grad_rows, out
        with nogil:
            _xent_backward(pf, t, ignore_index, gf, df)
    else:
        pd, gd, dd = probs, grad_rows, out
        with nogil:
            _xent_backward(pd, t, ignore_index, gd, dd)
    return out
