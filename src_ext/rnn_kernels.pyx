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

from products cimport mg_packed_step_available, packed_or_null
from rnn_common cimport (backward_finish, backward_setup, forward_setup, fresh,
                         gradients_after_loop, hidden_gradient_step, keep_last, loop_blocks,
                         new_slot, prev_slot, project, scratch, step_inputs, tanh_, time_at)
from work_split cimport share

from minigrad.fast._reference_rnn import _fold, check_backward, check_forward

_POOL: dict = {}  # work arrays that never leave a call (see rnn_common.scratch)


def packed_gemm_in_use():
    """True when float32 layers use the packed step products (src_ext/mg_gemm.h): the CPU
    has AVX-512 or AVX2 with FMA, and MINIGRAD_PACKED is not 0. Otherwise the steps call
    BLAS."""
    return bool(mg_packed_step_available())


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
        t = time_at(s, T, reverse, False)
        prev, cur = prev_slot(t, reverse), new_slot(t, reverse)
        # (1) with token ids, the step's projection; (2) pre_t += h_{t-1} @ W_hh^T
        step_inputs(tokens, by_token, w_ih, bias, pre, t, &hbuf[prev, b0, 0], w_hh, w_packed, 1,
                    &pre[t, b0, 0], b0, b1)
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
        t = time_at(s, T, reverse, True)
        cur = new_slot(t, reverse)
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
        hidden_gradient_step(&dgates[t, b0, 0], w_hh, w_packed, &dh_p, &dn_p, b1 - b0)
    keep_last(dh, dh_p, b0, b1)


def _run_forward(const floating[:, :, ::1] x, const int64_t[:, ::1] tokens, bint by_token,
                 const floating[:, ::1] w_ih, const floating[::1] bias,
                 floating[:, :, ::1] pre, const floating[:, ::1] w_hh,
                 const int64_t[::1] lengths, bint reverse, bint relu,
                 floating[:, :, ::1] hbuf, floating[:, :, ::1] out,
                 const float[::1] w_packed, int workers):
    """(1) (project), then (2)-(3) for every step, the batch rows split across workers."""
    cdef int w, blocks = loop_blocks(workers, x.shape[1], w_packed, False)
    with nogil:
        project(x, w_ih, bias, pre, by_token, workers)
        for w in prange(blocks, num_threads=workers, schedule="dynamic", chunksize=1):
            _forward_loop(pre, w_hh, lengths, reverse, relu, hbuf, out,
                          share(x.shape[1], w, blocks), share(x.shape[1], w + 1, blocks),
                          packed_or_null(w_packed), tokens, by_token, w_ih, bias)


def _run_backward(const floating[:, :, ::1] grad_out, const floating[:, :, ::1] hbuf,
                  const floating[:, ::1] w_hh, const int64_t[::1] lengths, bint reverse,
                  bint relu, floating[:, ::1] dh, floating[:, ::1] dh_next,
                  floating[:, :, ::1] dgates, floating[:, :, ::1] dh_seq,
                  const float[::1] w_packed, int workers, floating[::1] db, tuple grads):
    """(4)-(7) for every step in BPTT order, the batch rows split across workers, then (8)
    (gradients_after_loop)."""
    cdef int w, blocks = loop_blocks(workers, dh.shape[0], w_packed, False)
    with nogil:
        for w in prange(blocks, num_threads=workers, schedule="dynamic", chunksize=1):
            _backward_loop(grad_out, hbuf, w_hh, lengths, reverse, relu, dh, dh_next, dgates,
                           dh_seq, share(dh.shape[0], w, blocks),
                           share(dh.shape[0], w + 1, blocks), packed_or_null(w_packed))
    gradients_after_loop(grads, dgates, dgates, hbuf, reverse, db, NULL)


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
    x, dh_seq, workers, w_packed, grads = backward_setup(x, w_ih, w_hh, needs, 1)
    (T, B, _), H, dt = x.shape, w_hh.shape[1], x.dtype
    dgates = scratch(_POOL, (T, B, H), dt)
    dh, dh_next, db = grad_hn.copy(), np.empty((B, H), dt), np.zeros(H, dt)
    if T and B and H:
        _run_backward(grad_out, hbuf, w_hh, L, bool(reverse), bool(relu), dh, dh_next, dgates,
                      dh_seq, w_packed, workers, db, grads)
    dx, dw_ih, dw_hh = backward_finish(grads)
    return dx, dh, dw_ih, dw_hh, db, dh_seq
