# cython: language_level=3
"""Fused GRU over a whole sequence (gate order r, z, n; PyTorch's formulation with b_hn
inside r * (W_hn h + b_hn)): gru_forward and gru_backward. Read their numpy twins first
(minigrad/fast/_reference_rnn.py: same signatures, same numbered steps); rnn_common.pxd holds
what the three recurrent kernels share and says how the work is laid out."""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from products cimport packed_or_null
from rnn_common cimport (backward_finish, backward_setup, forward_setup, fresh,
                         gradients_after_loop, hidden_gradient_step, keep_last, loop_blocks,
                         new_slot, prev_slot, project, scratch, sigmoid, step_inputs, tanh_,
                         time_at)
from work_split cimport share

from minigrad.fast._reference_rnn import _fold, check_backward, check_forward

_POOL: dict = {}  # work arrays that never leave a call (see rnn_common.scratch)


cdef void _forward_loop(floating[:, :, ::1] gates, const floating[:, ::1] w_hh,
                        const floating[::1] b_hn, const int64_t[::1] lengths, bint reverse,
                        floating[:, ::1] gh, floating[:, :, ::1] hn_buf,
                        floating[:, :, ::1] hbuf, floating[:, :, ::1] out, Py_ssize_t b0,
                        Py_ssize_t b1, const float* w_packed, const int64_t[:, ::1] tokens,
                        bint by_token, const floating[:, ::1] w_ih,
                        const floating[::1] bias) noexcept nogil:
    # batch rows [b0, b1) only: rows never interact, so workers can run disjoint row ranges
    cdef Py_ssize_t T = gates.shape[0], H = hbuf.shape[2]
    cdef Py_ssize_t s, t, b, j, prev, cur
    cdef floating one = 1  # `1 - x` would be computed in double: Cython writes 1.0
    cdef floating *a
    cdef floating *q
    cdef floating *hp
    cdef floating *hc
    cdef floating *hn
    cdef floating *y
    for s in range(T):
        t = time_at(s, T, reverse, False)
        prev, cur = prev_slot(t, reverse), new_slot(t, reverse)
        # (1) with token ids, the step's projection; (2) gh = h_{t-1} @ W_hh^T, kept apart
        step_inputs(tokens, by_token, w_ih, bias, gates, t, &hbuf[prev, b0, 0], w_hh, w_packed,
                    0, &gh[b0, 0], b0, b1)
        for b in range(b0, b1):
            a, q, hp, hc = &gates[t, b, 0], &gh[b, 0], &hbuf[prev, b, 0], &hbuf[cur, b, 0]
            hn, y = &hn_buf[t, b, 0], &out[t, b, 0]
            if t >= lengths[b]:  # inactive row: carry the state, output zero
                memcpy(hc, hp, H * sizeof(floating))
                memset(hn, 0, H * sizeof(floating))
                memset(y, 0, H * sizeof(floating))
                memset(a, 0, 3 * H * sizeof(floating))
                continue
            # short branch-free loops over one row, so that gcc vectorises them
            # (3) r = σ(a_r + gh_r), z = σ(a_z + gh_z), hn = gh_n + b_hn
            for j in range(H):
                a[j] = sigmoid(a[j] + q[j])
                a[H + j] = sigmoid(a[H + j] + q[H + j])
            for j in range(H):
                hn[j] = q[2 * H + j] + b_hn[j]
            # (4) n = tanh(a_n + r hn), h_t = (1 - z) n + z h_{t-1}
            for j in range(H):
                a[2 * H + j] = tanh_(a[2 * H + j] + a[j] * hn[j])
            for j in range(H):
                hc[j] = (one - a[H + j]) * a[2 * H + j] + a[H + j] * hp[j]
            memcpy(y, hc, H * sizeof(floating))


cdef void _backward_loop(const floating[:, :, ::1] grad_out, const floating[:, :, ::1] gates,
                         const floating[:, :, ::1] hn_buf, const floating[:, :, ::1] hbuf,
                         const floating[:, ::1] w_hh, const int64_t[::1] lengths, bint reverse,
                         floating[:, ::1] dh, floating[:, ::1] dh_next,
                         floating[:, :, ::1] dgx, floating[:, :, ::1] dgh,
                         floating[:, :, ::1] dh_seq, Py_ssize_t b0, Py_ssize_t b1,
                         const float* w_packed) noexcept nogil:
    # batch rows [b0, b1) only (see _forward_loop)
    cdef Py_ssize_t T = gates.shape[0], H = dh.shape[1]
    cdef Py_ssize_t s, t, b, j, prev
    cdef floating one = 1  # `1 - x` would be computed in double: Cython writes 1.0
    cdef floating *dh_p = &dh[b0, 0]
    cdef floating *dn_p = &dh_next[b0, 0]
    cdef const floating *a
    cdef const floating *hn
    cdef const floating *hp
    cdef const floating *go
    cdef floating *gx
    cdef floating *gq
    cdef floating *dhb
    cdef floating *dnb
    cdef floating *ds
    for s in range(T):
        t = time_at(s, T, reverse, True)
        prev = prev_slot(t, reverse)
        for b in range(b0, b1):
            dhb, dnb = dh_p + (b - b0) * H, dn_p + (b - b0) * H
            gx, gq, ds = &dgx[t, b, 0], &dgh[t, b, 0], &dh_seq[t, b, 0]
            if t >= lengths[b]:  # inactive row: dh passes through unchanged
                memcpy(dnb, dhb, H * sizeof(floating))
                memset(gx, 0, 3 * H * sizeof(floating))
                memset(gq, 0, 3 * H * sizeof(floating))
                memset(ds, 0, H * sizeof(floating))
                continue
            a, hn = &gates[t, b, 0], &hn_buf[t, b, 0]
            hp, go = &hbuf[prev, b, 0], &grad_out[t, b, 0]
            # short branch-free loops over one row, so that gcc vectorises them
            # (1) dh_t = dout_t + dh carried from step t+1
            for j in range(H):
                ds[j] = go[j] + dhb[j]
            # (2) dn_pre = dh_t (1 - z) (1 - n^2),  dz_pre = dh_t (h_{t-1} - n) z (1 - z)
            for j in range(H):
                gx[2 * H + j] = ds[j] * (one - a[H + j]) * (one - a[2 * H + j] * a[2 * H + j])
            for j in range(H):
                gx[H + j] = ds[j] * (hp[j] - a[2 * H + j]) * a[H + j] * (one - a[H + j])
            # (3) dr_pre = dn_pre hn r (1 - r);  d(hn) = dn_pre r
            for j in range(H):
                gx[j] = gx[2 * H + j] * hn[j] * a[j] * (one - a[j])
            memcpy(gq, gx, 2 * H * sizeof(floating))
            for j in range(H):
                gq[2 * H + j] = gx[2 * H + j] * a[j]
            for j in range(H):
                dnb[j] = ds[j] * a[H + j]
        # (7) dh_{t-1} = dh_t z + dGh_t @ W_hh (GEMM in the loop); inactive rows carry dh
        hidden_gradient_step(&dgh[t, b0, 0], w_hh, w_packed, &dh_p, &dn_p, b1 - b0)
    keep_last(dh, dh_p, b0, b1)


def _run_forward(const floating[:, :, ::1] x, const int64_t[:, ::1] tokens, bint by_token,
                 const floating[:, ::1] w_ih, const floating[::1] bias,
                 floating[:, :, ::1] gates, const floating[:, ::1] w_hh,
                 const floating[::1] b_hn, const int64_t[::1] lengths, bint reverse,
                 floating[:, ::1] gh, floating[:, :, ::1] hn_buf, floating[:, :, ::1] hbuf,
                 floating[:, :, ::1] out, const float[::1] w_packed, int workers):
    """(1) (project), then (2)-(4) for every step, the batch rows split across workers."""
    cdef int w, blocks = loop_blocks(workers, x.shape[1], w_packed, False)
    with nogil:
        project(x, w_ih, bias, gates, by_token, workers)
        for w in prange(blocks, num_threads=workers, schedule="dynamic", chunksize=1):
            _forward_loop(gates, w_hh, b_hn, lengths, reverse, gh, hn_buf, hbuf, out,
                          share(x.shape[1], w, blocks), share(x.shape[1], w + 1, blocks),
                          packed_or_null(w_packed), tokens, by_token, w_ih, bias)


def _run_backward(const floating[:, :, ::1] grad_out, const floating[:, :, ::1] gates,
                  const floating[:, :, ::1] hn_buf, const floating[:, :, ::1] hbuf,
                  const floating[:, ::1] w_hh, const int64_t[::1] lengths, bint reverse,
                  floating[:, ::1] dh, floating[:, ::1] dh_next, floating[:, :, ::1] dgx,
                  floating[:, :, ::1] dgh, floating[:, :, ::1] dh_seq,
                  const float[::1] w_packed, int workers, floating[::1] db_ih,
                  floating[::1] db_hh, tuple grads):
    """(1)-(7) for every step in BPTT order, the batch rows split across workers (the
    hidden-side gate gradients go to dgh, apart from the input-side dgx), then (8)
    (gradients_after_loop)."""
    cdef int w, blocks = loop_blocks(workers, dh.shape[0], w_packed, False)
    with nogil:
        for w in prange(blocks, num_threads=workers, schedule="dynamic", chunksize=1):
            _backward_loop(grad_out, gates, hn_buf, hbuf, w_hh, lengths, reverse, dh, dh_next,
                           dgx, dgh, dh_seq, share(dh.shape[0], w, blocks),
                           share(dh.shape[0], w + 1, blocks), packed_or_null(w_packed))
    gradients_after_loop(grads, dgx, dgh, hbuf, reverse, db_ih, &db_hh[0])


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    """r = σ(.), z = σ(.), n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1-z) n + z h.

    Returns (out, h_n, cache); cache = (gates (T, B, 3H) activated r z n,
    hn (T, B, H) = W_hn h_{t-1} + b_hn, hbuf)."""
    L = check_forward("gru_forward", 3, x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths)
    H = w_hh.shape[1]
    # b_hr, b_hz fold into the projection; b_hn stays inside r * (W_hn h + b_hn)
    bias = _fold(b_ih, None if b_hh is None else
                 np.concatenate([b_hh[:2 * H], np.zeros(H, w_hh.dtype)]))
    x, tokens, by_token, bias, workers, w_packed = forward_setup(x, w_hh, bias, 3)
    T, B = x.shape[0], x.shape[1]
    dt = x.dtype
    b_hn = np.zeros(H, dt) if b_hh is None else np.ascontiguousarray(b_hh[2 * H:])
    gates = fresh((T, B, 3 * H), dt, 0)
    hn_buf, out = fresh((T, B, H), dt, 1), fresh((T, B, H), dt, 2)
    hbuf = fresh((T + 1, B, H), dt, 3)
    hbuf[T if reverse else 0] = h0
    gh = np.empty((B, 3 * H), dt)
    if T and B and H:
        _run_forward(x, tokens, by_token, w_ih, bias, gates, w_hh, b_hn, L, bool(reverse), gh,
                     hn_buf, hbuf, out, w_packed, workers)
    return out, hbuf[0 if reverse else T].copy(), (gates, hn_buf, hbuf)


def gru_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, cache, needs):
    """Returns (dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dh_seq)."""
    gates, hn_buf, hbuf = cache
    L = check_backward("gru_backward", 3, grad_out, grad_hn, None, x, w_ih, w_hh, None,
                       lengths, [(gates, 0, 3), (hn_buf, 0, 1), (hbuf, 1, 1)])
    x, dh_seq, workers, w_packed, grads = backward_setup(x, w_ih, w_hh, needs, 3)
    (T, B, _), H, dt = x.shape, w_hh.shape[1], x.dtype
    dgx, dgh = scratch(_POOL, (T, B, 3 * H), dt), scratch(_POOL, (T, B, 3 * H), dt)
    dh, dh_next = grad_hn.copy(), np.empty((B, H), dt)
    db_ih, db_hh = np.zeros(3 * H, dt), np.zeros(3 * H, dt)
    if T and B and H:
        _run_backward(grad_out, gates, hn_buf, hbuf, w_hh, L, bool(reverse), dh, dh_next, dgx,
                      dgh, dh_seq, w_packed, workers, db_ih, db_hh, grads)
    dx, dw_ih, dw_hh = backward_finish(grads)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh, dh_seq
