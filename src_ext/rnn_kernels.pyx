# cython: language_level=3
"""Fused Elman RNN (tanh or relu) over a whole sequence: rnn_forward and rnn_backward, whose
twins in minigrad/fast/_reference_rnn.py have the same signatures and numbered steps (read
those first). The work's layout and the code the three recurrent kernels share (setup,
projection, worker split, gradients after the loop): rnn_common.pxd."""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from rnn_common cimport (after_loop, backward_setup, forward_setup, fresh, input_weight_gradient,
                         look_up_step, packed_gemm_enabled, packed_or_null, project, scratch,
                         step_product, tanh_)
from work_split cimport share

from minigrad.fast._reference_rnn import _fold, check_backward, check_forward

_POOL: dict = {}  # work arrays that never leave a call (see rnn_common.scratch)


def packed_gemm_in_use():
    """True when float32 layers use the packed AVX-512 step products (src_ext/mg_gemm.h):
    the CPU has AVX-512 and MINIGRAD_AVX512 is not 0. Otherwise the steps call BLAS."""
    return packed_gemm_enabled()


cdef void _forward_loop(floating[:, :, ::1] pre, const floating[:, ::1] w_hh,
                        const int64_t[::1] lengths, bint reverse, bint relu,
                        floating[:, :, ::1] hbuf, floating[:, :, ::1] out, Py_ssize_t b0,
                        Py_ssize_t b1, const float* w_packed, const int64_t[:, ::1] tokens,
                        bint by_token, const floating[:, ::1] w_ih,
                        const floating[::1] bias) noexcept nogil:
    # batch rows [b0, b1) only: rows never interact, so workers can run disjoint row ranges
    cdef Py_ssize_t T = pre.shape[0], H = hbuf.shape[2]
    cdef Py_ssize_t s, t, b, j, prev, cur
    cdef floating *a
    cdef floating *hp
    cdef floating *hc
    cdef floating *y
    for s in range(T):
        t = T - 1 - s if reverse else s
        prev, cur = (t + 1, t) if reverse else (t, t + 1)
        if by_token:  # (1) this step's input projection, looked up in the table
            look_up_step(tokens, w_ih, bias, pre, t, b0, b1)
        # (2) recurrent product, the only GEMM inside the loop: pre_t += h_{t-1} @ W_hh^T
        step_product(True, <int>(b1 - b0), <int>H, <int>H, &hbuf[prev, b0, 0], &w_hh[0, 0],
                     w_packed, 1, &pre[t, b0, 0])
        for b in range(b0, b1):
            a, hp, hc, y = &pre[t, b, 0], &hbuf[prev, b, 0], &hbuf[cur, b, 0], &out[t, b, 0]
            if t >= lengths[b]:  # inactive row: carry the state, output zero
                memcpy(hc, hp, H * sizeof(floating))
                memset(y, 0, H * sizeof(floating))
                continue
            # (3) h_t = act(pre)
            if relu:
                for j in range(H):
                    hc[j] = a[j] if a[j] > 0 else 0
            else:
                for j in range(H):
                    hc[j] = tanh_(a[j])
            memcpy(y, hc, H * sizeof(floating))


cdef void _backward_loop(const floating[:, :, ::1] grad_out, const floating[:, :, ::1] hbuf,
                         const floating[:, ::1] w_hh, const int64_t[::1] lengths, bint reverse,
                         bint relu, floating[:, ::1] dh, floating[:, ::1] dh_next,
                         floating[:, :, ::1] dgates, floating[:, :, ::1] dh_seq, Py_ssize_t b0,
                         Py_ssize_t b1, const float* w_packed) noexcept nogil:
    # batch rows [b0, b1) only (see _forward_loop)
    cdef Py_ssize_t T = grad_out.shape[0], H = dh.shape[1]
    cdef Py_ssize_t s, t, b, j, cur
    cdef floating one = 1  # `1 - x` would be computed in double: Cython writes 1.0
    cdef floating *dh_p = &dh[b0, 0]
    cdef floating *dn_p = &dh_next[b0, 0]
    cdef const floating *h
    cdef const floating *go
    cdef floating *dg
    cdef floating *dhb
    cdef floating *dnb
    cdef floating *ds
    for s in range(T):
        t = s if reverse else T - 1 - s
        cur = t if reverse else t + 1
        for b in range(b0, b1):
            dhb, dnb = dh_p + (b - b0) * H, dn_p + (b - b0) * H
            dg, ds = &dgates[t, b, 0], &dh_seq[t, b, 0]
            if t >= lengths[b]:  # inactive row: dh passes through unchanged
                memcpy(dnb, dhb, H * sizeof(floating))
                memset(dg, 0, H * sizeof(floating))
                memset(ds, 0, H * sizeof(floating))
                continue
            h, go = &hbuf[cur, b, 0], &grad_out[t, b, 0]
            # (4) total gradient reaching h_t: from the output at t and from the next step
            for j in range(H):
                ds[j] = go[j] + dhb[j]
            # (5) through the nonlinearity: tanh' = 1 - h^2, relu' = [h > 0]
            if relu:
                for j in range(H):
                    dg[j] = ds[j] if h[j] > 0 else 0
            else:
                for j in range(H):
                    dg[j] = ds[j] * (one - h[j] * h[j])
            memset(dnb, 0, H * sizeof(floating))
        # (7) dh_{t-1} = dG_t @ W_hh (GEMM in the loop); inactive rows carry dh unchanged
        step_product(False, <int>(b1 - b0), <int>H, <int>H, &dgates[t, b0, 0], &w_hh[0, 0],
                     w_packed, 1, dn_p)
        dh_p, dn_p = dn_p, dh_p
    if dh_p != &dh[b0, 0]:
        memcpy(&dh[b0, 0], dh_p, (b1 - b0) * H * sizeof(floating))


def _run_forward(const floating[:, :, ::1] x, const int64_t[:, ::1] tokens, bint by_token,
                 const floating[:, ::1] w_ih, const floating[::1] bias,
                 floating[:, :, ::1] pre, const floating[:, ::1] w_hh,
                 const int64_t[::1] lengths, bint reverse, bint relu,
                 floating[:, :, ::1] hbuf, floating[:, :, ::1] out,
                 const float[::1] w_packed, int workers):
    """(1) unless x holds token ids, then (2)-(3) on the batch rows split across workers."""
    cdef int w
    with nogil:
        if not by_token:  # token ids: the time loop looks its rows up (look_up_step)
            project(x, w_ih, bias, pre, workers)
        for w in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            _forward_loop(pre, w_hh, lengths, reverse, relu, hbuf, out,
                          share(x.shape[1], w, workers), share(x.shape[1], w + 1, workers),
                          packed_or_null(w_packed), tokens, by_token, w_ih, bias)


def _run_backward(const floating[:, :, ::1] grad_out, const floating[:, :, ::1] hbuf,
                  const floating[:, :, ::1] x, const floating[:, ::1] w_ih,
                  const floating[:, ::1] w_hh, const int64_t[::1] lengths, bint reverse,
                  bint relu, floating[:, ::1] dh, floating[:, ::1] dh_next,
                  floating[:, :, ::1] dgates, floating[:, :, ::1] dh_seq,
                  floating[:, :, ::1] dx, floating[:, ::1] dw_ih, floating[:, ::1] dw_hh,
                  tuple needs, const float[::1] w_packed, const floating[::1] ones,
                  floating[::1] db, const int64_t[:, ::1] tokens, bint by_token,
                  floating[:, :, ::1] parts, int workers):
    """(4)-(7) on the batch rows split across workers, then (8) (after_loop)."""
    cdef bint n_dx = needs[0], n_ih = needs[1], n_hh = needs[2]
    cdef int w
    with nogil:
        for w in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            _backward_loop(grad_out, hbuf, w_hh, lengths, reverse, relu, dh, dh_next, dgates,
                           dh_seq, share(x.shape[1], w, workers),
                           share(x.shape[1], w + 1, workers), packed_or_null(w_packed))
        after_loop(dgates, dgates, x, w_ih, &hbuf[1 if reverse else 0, 0, 0], <int>dh.shape[1],
                   dx, dw_ih, dw_hh, n_dx, n_ih, n_hh, ones, db, NULL, tokens, by_token, parts,
                   packed_or_null(w_packed) != NULL, workers)


def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = relu if ``relu`` else tanh.

    Returns (out (T, B, H), h_n (B, H), cache)."""
    L = check_forward("rnn_forward", 1, x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths)
    x, tokens, by_token, bias, workers, w_packed = forward_setup(x, w_hh, _fold(b_ih, b_hh), 1)
    T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
    pre = scratch(_POOL, (T, B, H), x.dtype)
    hbuf, out = fresh((T + 1, B, H), x.dtype, 1), fresh((T, B, H), x.dtype, 2)
    hbuf[T if reverse else 0] = h0
    if T and B and H:
        _run_forward(x, tokens, by_token, w_ih, bias, pre, w_hh, L, bool(reverse), bool(relu),
                     hbuf, out, w_packed, workers)
    return out, hbuf[0 if reverse else T].copy(), (hbuf,)


def rnn_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, relu, cache, needs):
    """Returns (dx, dh0, dw_ih, dw_hh, db, dh_seq); db is the gradient of b_ih and of b_hh."""
    hbuf, = cache
    L = check_backward("rnn_backward", 1, grad_out, grad_hn, None, x, w_ih, w_hh, None,
                       lengths, [(hbuf, 1, 1)])
    x, tokens, by_token, needs, dx, dw_ih, dw_hh, dh_seq, ones, parts, workers, w_packed = \
        backward_setup(x, w_ih, w_hh, needs, 1)
    (T, B, _), H, dt = x.shape, w_hh.shape[1], x.dtype
    dgates = scratch(_POOL, (T, B, H), dt)
    dh, dh_next, db = grad_hn.copy(), np.empty((B, H), dt), np.zeros(H, dt)
    if T and B and H:
        _run_backward(grad_out, hbuf, x, w_ih, w_hh, L, bool(reverse), bool(relu), dh, dh_next,
                      dgates, dh_seq, dx, dw_ih, dw_hh, needs, w_packed, ones, db, tokens,
                      by_token, parts, workers)
    return dx, dh, input_weight_gradient(dw_ih, parts, by_token, needs), dw_hh, db, dh_seq
