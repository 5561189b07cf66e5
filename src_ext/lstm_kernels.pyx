# cython: language_level=3
"""Fused LSTM over a whole sequence (gate order i, f, g, o; optional peepholes): lstm_forward
and lstm_backward, twins of minigrad/fast/_reference_rnn.py's functions of those names (same
signatures, same numbered steps; read them first). Their gate pass per batch row is in
mg_lstm_rows.h; what the recurrent kernels share is in rnn_common.pxd."""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from products cimport packed_or_null
from rnn_common cimport (backward_finish, backward_setup, forward_setup, fresh,
                         gradients_after_loop, hidden_gradient_step, keep_last, loop_blocks,
                         new_slot, prev_slot, project, scratch, step_inputs, time_at)
from work_split cimport share

from minigrad.fast._reference_rnn import _fold, check_backward, check_forward

_POOL: dict = {}  # work arrays that never leave a call (see rnn_common.scratch)

cdef extern from "mg_lstm_rows.h" nogil:
    void mg_lstm_row_forward_f(long H, float* a, const float* cp, const float* p0,
                               const float* p1, const float* p2, float* cc, float* tc,
                               float* hc, float* y)
    void mg_lstm_row_forward_d(long H, double* a, const double* cp, const double* p0,
                               const double* p1, const double* p2, double* cc, double* tc,
                               double* hc, double* y)
    void mg_lstm_row_backward_f(long H, const float* a, const float* cp, const float* tc,
                                const float* go, const float* dhb, const float* p0,
                                const float* p1, const float* p2, float* dcb, float* dg,
                                float* ds)
    void mg_lstm_row_backward_d(long H, const double* a, const double* cp, const double* tc,
                                const double* go, const double* dhb, const double* p0,
                                const double* p1, const double* p2, double* dcb, double* dg,
                                double* ds)


cdef void _forward_loop(floating[:, :, ::1] gates, const floating[:, ::1] w_hh,
                        const floating[:, ::1] peep, const int64_t[::1] lengths,
                        bint reverse, floating[:, :, ::1] hbuf, floating[:, :, ::1] cbuf,
                        floating[:, :, ::1] tanh_c, floating[:, :, ::1] out, Py_ssize_t b0,
                        Py_ssize_t b1, const float* w_packed, const int64_t[:, ::1] tokens,
                        bint by_token, const floating[:, ::1] w_ih,
                        const floating[::1] bias) noexcept nogil:
    # batch rows [b0, b1) only: rows never interact, so workers can run disjoint row ranges
    cdef Py_ssize_t T = gates.shape[0], H = hbuf.shape[2]
    cdef Py_ssize_t s, t, b, prev, cur
    cdef floating *a
    cdef floating *hp
    cdef floating *cp
    cdef floating *hc
    cdef floating *cc
    cdef floating *tc
    cdef floating *y
    cdef const floating *p0 = &peep[0, 0]
    cdef const floating *p1 = &peep[1, 0]
    cdef const floating *p2 = &peep[2, 0]
    for s in range(T):
        t = time_at(s, T, reverse, False)
        prev, cur = prev_slot(t, reverse), new_slot(t, reverse)
        # (1) with token ids, the step's projection; (2) a_t += h_{t-1} @ W_hh^T
        step_inputs(tokens, by_token, w_ih, bias, gates, t, &hbuf[prev, b0, 0], w_hh, w_packed,
                    1, &gates[t, b0, 0], b0, b1)
        for b in range(b0, b1):
            a, hp, cp = &gates[t, b, 0], &hbuf[prev, b, 0], &cbuf[prev, b, 0]
            hc, cc, tc, y = &hbuf[cur, b, 0], &cbuf[cur, b, 0], &tanh_c[t, b, 0], &out[t, b, 0]
            if t >= lengths[b]:  # inactive row: carry the state, output zero
                memcpy(hc, hp, H * sizeof(floating))
                memcpy(cc, cp, H * sizeof(floating))
                memset(tc, 0, H * sizeof(floating))
                memset(y, 0, H * sizeof(floating))
                memset(a, 0, 4 * H * sizeof(floating))
                continue
            # one row, in one vectorised loop over the units (p = 0 when there are no
            # peepholes):
            # (3) i = σ(a_i [+ p_i c_{t-1}]), f = σ(a_f [+ p_f c_{t-1}]), g = tanh(a_g)
            # (4) c_t = f c_{t-1} + i g
            # (5) o = σ(a_o [+ p_o c_t]), h_t = o tanh(c_t)
            if floating is float:
                mg_lstm_row_forward_f(H, a, cp, p0, p1, p2, cc, tc, hc, y)
            else:
                mg_lstm_row_forward_d(H, a, cp, p0, p1, p2, cc, tc, hc, y)


cdef void _backward_loop(const floating[:, :, ::1] grad_out, const floating[:, :, ::1] gates,
                         const floating[:, :, ::1] cbuf, const floating[:, :, ::1] tanh_c,
                         const floating[:, ::1] w_hh, const floating[:, ::1] peep,
                         bint has_peep, const int64_t[::1] lengths, bint reverse,
                         floating[:, ::1] dh,
                         floating[:, ::1] dh_next, floating[:, ::1] dc,
                         floating[:, :, ::1] dgates, floating[:, ::1] dpeep,
                         floating[:, :, ::1] dh_seq, Py_ssize_t b0, Py_ssize_t b1,
                         const float* w_packed) noexcept nogil:
    # batch rows [b0, b1) only (see _forward_loop); dpeep is this worker's own (3, H) sum
    cdef Py_ssize_t T = gates.shape[0], H = dh.shape[1]
    cdef Py_ssize_t s, t, b, j, prev, cur
    cdef floating *dh_p = &dh[b0, 0]
    cdef floating *dn_p = &dh_next[b0, 0]
    cdef const floating *a
    cdef const floating *cp
    cdef const floating *cc
    cdef const floating *tc
    cdef const floating *go
    cdef floating *dg
    cdef floating *dhb
    cdef floating *dnb
    cdef floating *dcb
    cdef floating *ds
    cdef const floating *p0 = &peep[0, 0]
    cdef const floating *p1 = &peep[1, 0]
    cdef const floating *p2 = &peep[2, 0]
    cdef floating *q0 = &dpeep[0, 0]
    cdef floating *q1 = &dpeep[1, 0]
    cdef floating *q2 = &dpeep[2, 0]
    for s in range(T):
        t = time_at(s, T, reverse, True)
        prev, cur = prev_slot(t, reverse), new_slot(t, reverse)
        for b in range(b0, b1):
            dhb, dnb, dcb = dh_p + (b - b0) * H, dn_p + (b - b0) * H, &dc[b, 0]
            dg, ds = &dgates[t, b, 0], &dh_seq[t, b, 0]
            if t >= lengths[b]:  # inactive row: dh and dc pass through unchanged
                memcpy(dnb, dhb, H * sizeof(floating))
                memset(dg, 0, 4 * H * sizeof(floating))
                memset(ds, 0, H * sizeof(floating))
                continue
            a, cp, cc = &gates[t, b, 0], &cbuf[prev, b, 0], &cbuf[cur, b, 0]
            tc, go = &tanh_c[t, b, 0], &grad_out[t, b, 0]
            # one row, in one vectorised loop over the units (p = 0 when there are no
            # peepholes); dG_t holds i f g o gradients, dc the running dc_t:
            # (1) dh_t = dout_t + dh carried from step t+1
            # (2) do_pre = dh_t * tanh(c_t) * o * (1 - o)
            # (3) dc_t += dh_t * o * (1 - tanh(c_t)^2)   [+ p_o * do_pre]
            # (4) di_pre = dc_t g i(1-i), df_pre = dc_t c_{t-1} f(1-f), dg_pre = dc_t i (1-g^2)
            # (5) dc_{t-1} = dc_t * f   [+ p_i * di_pre + p_f * df_pre]
            if floating is float:
                mg_lstm_row_backward_f(H, a, cp, tc, go, dhb, p0, p1, p2, dcb, dg, ds)
            else:
                mg_lstm_row_backward_d(H, a, cp, tc, go, dhb, p0, p1, p2, dcb, dg, ds)
            if has_peep:
                # (6) dp_i += di_pre c_{t-1}, dp_f += df_pre c_{t-1}, dp_o += do_pre c_t
                for j in range(H):
                    q0[j] += dg[j] * cp[j]
                for j in range(H):
                    q1[j] += dg[H + j] * cp[j]
                for j in range(H):
                    q2[j] += dg[3 * H + j] * cc[j]
            memset(dnb, 0, H * sizeof(floating))
        # (7) dh_{t-1} = dG_t @ W_hh (GEMM in the loop); inactive rows carry dh unchanged
        hidden_gradient_step(&dgates[t, b0, 0], w_hh, w_packed, &dh_p, &dn_p, b1 - b0)
    keep_last(dh, dh_p, b0, b1)


def _run_forward(const floating[:, :, ::1] x, const int64_t[:, ::1] tokens, bint by_token,
                 const floating[:, ::1] w_ih, const floating[::1] bias,
                 floating[:, :, ::1] gates, const floating[:, ::1] w_hh,
                 const floating[:, ::1] peep, const int64_t[::1] lengths, bint reverse,
                 floating[:, :, ::1] hbuf, floating[:, :, ::1] cbuf,
                 floating[:, :, ::1] tanh_c, floating[:, :, ::1] out,
                 const float[::1] w_packed, int workers):
    """The input projection (project), then the time loop, the batch rows split across
    workers."""
    cdef int w, blocks = loop_blocks(workers, x.shape[1], w_packed, False)
    with nogil:
        project(x, w_ih, bias, gates, by_token, workers)
        for w in prange(blocks, num_threads=workers, schedule="dynamic", chunksize=1):
            _forward_loop(gates, w_hh, peep, lengths, reverse, hbuf, cbuf, tanh_c, out,
                          share(x.shape[1], w, blocks), share(x.shape[1], w + 1, blocks),
                          packed_or_null(w_packed), tokens, by_token, w_ih, bias)


def _run_backward(const floating[:, :, ::1] grad_out, const floating[:, :, ::1] gates,
                  const floating[:, :, ::1] hbuf, const floating[:, :, ::1] cbuf,
                  const floating[:, :, ::1] tanh_c, const floating[:, ::1] w_hh,
                  const floating[:, ::1] peep, bint has_peep, const int64_t[::1] lengths,
                  bint reverse, floating[:, ::1] dh, floating[:, ::1] dh_next,
                  floating[:, ::1] dc, floating[:, :, ::1] dgates, floating[:, :, ::1] dpeep,
                  floating[:, :, ::1] dh_seq, const float[::1] w_packed, int workers,
                  floating[::1] db, tuple grads):
    """The reverse time loop, the batch rows cut by loop_blocks (with peepholes one share per
    worker, which sums its peephole gradients into dpeep[w]), then (8) (gradients_after_loop)."""
    cdef int w, blocks = loop_blocks(workers, dh.shape[0], w_packed, has_peep)
    with nogil:
        for w in prange(blocks, num_threads=workers, schedule="dynamic", chunksize=1):
            _backward_loop(grad_out, gates, cbuf, tanh_c, w_hh, peep, has_peep, lengths,
                           reverse, dh, dh_next, dc, dgates, dpeep[w if has_peep else 0], dh_seq,
                           share(dh.shape[0], w, blocks), share(dh.shape[0], w + 1, blocks),
                           packed_or_null(w_packed))
    gradients_after_loop(grads, dgates, dgates, hbuf, reverse, db, NULL)


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths, reverse):
    """LSTM with optional peepholes w_peep (3, H) = (p_i, p_f, p_o).

    Returns (out, h_n, c_n, cache); cache = (gates (T, B, 4H) activated i f g o, hbuf, cbuf,
    tanh_c (T, B, H))."""
    L = check_forward("lstm_forward", 4, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths)
    x, tokens, by_token, bias, workers, w_packed = forward_setup(x, w_hh, _fold(b_ih, b_hh), 4)
    T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
    dt = x.dtype
    gates = fresh((T, B, 4 * H), dt, 0)
    hbuf, cbuf = fresh((T + 1, B, H), dt, 1), fresh((T + 1, B, H), dt, 2)
    tanh_c, out = fresh((T, B, H), dt, 3), fresh((T, B, H), dt, 4)
    hbuf[T if reverse else 0], cbuf[T if reverse else 0] = h0, c0
    peep = w_peep if w_peep is not None else np.zeros((3, H), dt)
    if T and B and H:
        _run_forward(x, tokens, by_token, w_ih, bias, gates, w_hh, peep, L, bool(reverse), hbuf,
                     cbuf, tanh_c, out, w_packed, workers)
    last = 0 if reverse else T
    return out, hbuf[last].copy(), cbuf[last].copy(), (gates, hbuf, cbuf, tanh_c)


def lstm_backward(grad_out, grad_hn, grad_cn, x, w_ih, w_hh, w_peep, lengths, reverse, cache,
                  needs):
    """Returns (dx, dh0, dc0, dw_ih, dw_hh, db, dw_peep, dh_seq); db is d b_ih = d b_hh."""
    gates, hbuf, cbuf, tanh_c = cache
    L = check_backward("lstm_backward", 4, grad_out, grad_hn, grad_cn, x, w_ih, w_hh, w_peep,
                       lengths, [(gates, 0, 4), (hbuf, 1, 1), (cbuf, 1, 1), (tanh_c, 0, 1)])
    x, dh_seq, workers, w_packed, grads = backward_setup(x, w_ih, w_hh, needs, 4)
    (T, B, _), H, dt = x.shape, w_hh.shape[1], x.dtype
    dgates = scratch(_POOL, (T, B, 4 * H), dt)
    peep = w_peep if w_peep is not None else np.zeros((3, H), dt)
    db, dpeep = np.zeros(4 * H, dt), np.zeros((workers, 3, H), dt)  # a sum per worker
    dh, dc, dh_next = grad_hn.copy(), grad_cn.copy(), np.empty((B, H), dt)
    if T and B and H:
        _run_backward(grad_out, gates, hbuf, cbuf, tanh_c, w_hh, peep, w_peep is not None, L,
                      bool(reverse), dh, dh_next, dc, dgates, dpeep, dh_seq, w_packed, workers,
                      db, grads)
    dx, dw_ih, dw_hh = backward_finish(grads)
    return (dx, dh, dc, dw_ih, dw_hh, db, dpeep.sum(axis=0) if w_peep is not None else None,
            dh_seq)
