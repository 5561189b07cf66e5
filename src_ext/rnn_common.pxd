# cython: language_level=3
"""What rnn_kernels.pyx, lstm_kernels.pyx and gru_kernels.pyx share (inline helpers).

How those kernels lay out the work: (1) the input projection and (8) the weight and input
gradients are single GEMMs outside the time loop (project / after_loop; with token ids, (1) is
a row of the projected table looked up at each step, look_up_step); everything from (1) to
(8) runs without the GIL. Workers (OpenMP, minigrad/fast/threads.py) each take a contiguous
share of the batch rows through the whole time loop (work_split.share), and a share of the
rows of each GEMM outside it. The one recurrent product per step is step_product: W_hh packed
once per sequence and the AVX-512 tile of mg_gemm.h for float32, BLAS otherwise.

Each kernel module keeps only its cell: the time loops over one worker's rows, and a
``_run_forward`` / ``_run_backward`` that runs them on every worker (fused def functions:
Cython picks the float or double build from the arrays). Everything else is here:
- the wrappers' beginning and end: forward_setup, backward_setup, backward_finish (which
  picks the gradients and sums the table's), fresh and scratch arrays;
- (1) and (8) outside the time loops: project, look_up_step, gradients_after_loop (the
  backward drivers' call of after_loop);
- the loops' shared steps: time_at / prev_slot / new_slot (the order of the steps and the
  states each reads and writes, as the twin's _steps and _slots), step_inputs ((1)-(2) of a
  forward step), hidden_gradient_step and keep_last ((7) of a backward step);
- numerically stable activations.
The matrix products (BLAS and the packed tile) are in products.pxd. The nogil helpers are
marked so; the setup helpers, fresh and scratch run with the GIL, before the loops."""
from cython cimport floating
from cython.parallel cimport prange

cimport numpy as cnp
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject, _Py_REFCNT
from libc.stdint cimport int64_t
from libc.string cimport memcpy

from products cimport (input_gradient, matmul_nt, matmul_tn, packed_gemm_enabled,
                       packed_weights, step_product, weight_gradient)
from work_split cimport share

cdef extern from "mg_math.h" nogil:
    # branch-free exp that vectorises (see the header)
    float mg_expf(float x)
    double mg_exp(double x)


cdef inline void _project_share(const floating[:, :, ::1] x, const floating[:, ::1] w_ih,
                                const floating[::1] bias, floating[:, :, ::1] gates,
                                Py_ssize_t w, Py_ssize_t workers) noexcept nogil:
    # worker w's share of the T*B rows of project()
    cdef Py_ssize_t rows = gates.shape[0] * gates.shape[1], I = x.shape[2]
    cdef Py_ssize_t GH = gates.shape[2], r
    cdef Py_ssize_t r0 = share(rows, w, workers), r1 = share(rows, w + 1, workers)
    for r in range(r0, r1):
        memcpy(&gates[0, 0, 0] + r * GH, &bias[0], GH * sizeof(floating))
    if I > 0 and r1 > r0:
        matmul_nt(<int>(r1 - r0), <int>GH, <int>I, &x[0, 0, 0] + r0 * I, &w_ih[0, 0], 1,
                  &gates[0, 0, 0] + r0 * GH)


cdef inline void project(const floating[:, :, ::1] x, const floating[:, ::1] w_ih,
                         const floating[::1] bias, floating[:, :, ::1] gates, bint by_token,
                         int workers) noexcept nogil:
    """(1) gates (T, B, G*H) = X (T*B, I) @ W_ih^T + bias: ONE GEMM for every time step, its
    T*B rows split across ``workers`` workers. Nothing with token ids (``by_token``): the time
    loop looks each step's rows up instead (look_up_step)."""
    cdef int w
    if by_token:
        return
    for w in prange(workers, num_threads=workers, schedule="static", chunksize=1):
        _project_share(x, w_ih, bias, gates, w, workers)


cdef inline void look_up_step(const int64_t[:, ::1] tokens, const floating[:, ::1] table,
                              const floating[::1] bias, floating[:, :, ::1] gates,
                              Py_ssize_t t, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """(1) with token ids, step t's input projection for rows [b0, b1): the projected table's
    row of each token, plus the bias (a one-hot x times W_ih is a row of table = E W_ih^T).
    The time loop calls it right before the step's product reads those rows, so they are
    written and read while in cache; a copy for the whole sequence before the loop went out
    to memory and back."""
    cdef Py_ssize_t GH = gates.shape[2], b, j
    cdef floating *g
    cdef const floating *row
    for b in range(b0, b1):
        g, row = &gates[t, b, 0], &table[tokens[t, b], 0]
        for j in range(GH):
            g[j] = row[j] + bias[j]


cdef inline Py_ssize_t time_at(Py_ssize_t s, Py_ssize_t T, bint reverse,
                               bint backward) noexcept nogil:
    """The time position of loop step s: the forward order (T-1 .. 0 when ``reverse``) or,
    for ``backward``, BPTT's opposite order (the twin's _steps)."""
    return T - 1 - s if reverse != backward else s


cdef inline Py_ssize_t prev_slot(Py_ssize_t t, bint reverse) noexcept nogil:
    """The hbuf index of the state the step at time t reads (the twin's _slots)."""
    return t + 1 if reverse else t


cdef inline Py_ssize_t new_slot(Py_ssize_t t, bint reverse) noexcept nogil:
    """The hbuf index of the state the step at time t writes (the twin's _slots)."""
    return t if reverse else t + 1


cdef inline void step_inputs(const int64_t[:, ::1] tokens, bint by_token,
                             const floating[:, ::1] table, const floating[::1] bias,
                             floating[:, :, ::1] gates, Py_ssize_t t, const floating* h_prev,
                             const floating[:, ::1] w_hh, const float* w_packed,
                             floating beta, floating* c, Py_ssize_t b0,
                             Py_ssize_t b1) noexcept nogil:
    """Steps (1)-(2) of every forward loop at time t, batch rows [b0, b1): with token ids,
    (1) the step's input projection, looked up (look_up_step; otherwise project did it before
    the loop); (2) the recurrent product, the only GEMM inside the loop: c = h_{t-1} W_hh^T +
    beta c for the rows' block c, h_prev pointing at row b0 of h_{t-1} (step_product). The RNN
    and the LSTM add it onto their gates (c their rows of gates[t], beta 1); the GRU keeps it
    apart (beta 0)."""
    if by_token:
        look_up_step(tokens, table, bias, gates, t, b0, b1)
    step_product(True, <int>(b1 - b0), <int>w_hh.shape[0], <int>w_hh.shape[1],
                 h_prev, &w_hh[0, 0], w_packed, beta, c)


cdef inline void hidden_gradient_step(const floating* dg, const floating[:, ::1] w_hh,
                                      const float* w_packed, floating** dh_p,
                                      floating** dn_p, Py_ssize_t rows) noexcept nogil:
    """Step (7) of every backward loop: dh_{t-1} (``*dn_p``, holding what reaches it besides
    W_hh) += dG_t W_hh for the rows' block (step_product; dg: their gate gradients), then the
    two buffers swap: *dh_p is now dh_{t-1}, and *dn_p free for the next step."""
    step_product(False, <int>rows, <int>w_hh.shape[1], <int>w_hh.shape[0], dg, &w_hh[0, 0],
                 w_packed, 1, dn_p[0])
    dh_p[0], dn_p[0] = dn_p[0], dh_p[0]


cdef inline int loop_blocks(int workers, Py_ssize_t rows, const float[::1] w_packed,
                            bint row_sums) noexcept nogil:
    """Into how many pieces a time loop's batch rows are cut; the workers take them as they
    come free (a worker slowed by another program on its core takes fewer). Blocks of about 8
    rows (the rows cut evenly into ceil(rows / 8) pieces) when the step products run on the
    packed tile, whose rows come out the same whatever the cut
    (tests/test_recurrent_kernels.py), and nothing in the loop sums over rows (``row_sums``:
    the LSTM's peephole gradients, a sum per share), and while the packed W_hh fits in 1 MB
    (1 << 18 floats; each block reads all of it every step: at hidden 512 the smaller blocks
    cost 6-8% on an idle machine, RESULTS.md, session 9); else one share per worker (the BLAS
    products' numbers depend on the cut; the tile's do not, so this choice changes no
    number)."""
    if (workers > 1 and w_packed.shape[0] != 0 and w_packed.shape[0] <= (1 << 18)
            and not row_sums):
        return <int>((rows + 7) // 8)
    return workers


cdef inline void keep_last(floating[:, ::1] dh, const floating* dh_p, Py_ssize_t b0,
                           Py_ssize_t b1) noexcept nogil:
    """After a backward loop: its rows [b0, b1) of dh_{-1} ended in dh_p, one of the two
    buffers hidden_gradient_step swaps; make them dh's."""
    if dh_p != &dh[b0, 0]:
        memcpy(&dh[b0, 0], dh_p, (b1 - b0) * dh.shape[1] * sizeof(floating))


cdef inline void scatter_token_rows(const floating[:, :, ::1] dgx,
                                    const int64_t[:, ::1] tokens, floating[:, :, ::1] parts,
                                    Py_ssize_t w, Py_ssize_t workers) noexcept nogil:
    """(8) with token ids: d table[v] = sum of the rows of dG_x whose token is v. Worker w adds
    its share of the T*B rows into its own zeroed part (V, G*H); the caller sums the parts."""
    cdef Py_ssize_t rows = dgx.shape[0] * dgx.shape[1], GH = dgx.shape[2], r, j
    cdef Py_ssize_t r0 = share(rows, w, workers), r1 = share(rows, w + 1, workers)
    cdef floating *acc
    cdef const floating *src
    for r in range(r0, r1):
        acc, src = &parts[w, (&tokens[0, 0])[r], 0], &dgx[0, 0, 0] + r * GH
        for j in range(GH):
            acc[j] += src[j]


cdef inline void _after_loop_share(const floating[:, :, ::1] dgx,
                                   const floating[:, :, ::1] dgh, const floating[:, :, ::1] x,
                                   const floating[:, ::1] w_ih, const floating* h_prev, int H,
                                   floating[:, :, ::1] dx, floating[:, :, ::1] dw_ih,
                                   floating[:, :, ::1] dw_hh, bint need_dx, bint need_dw_ih,
                                   bint need_dw_hh, const floating[::1] ones,
                                   floating[::1] db_x, floating* db_h,
                                   const int64_t[:, ::1] tokens, bint by_token,
                                   floating[:, :, ::1] parts, bint tile, Py_ssize_t w,
                                   Py_ssize_t workers) noexcept nogil:
    # worker w's share of after_loop(): its rows of the T*B, for dX and for its own partial
    # sums dW_ih[w], dW_hh[w] (whole-size products over fewer rows: splitting the gate rows
    # instead made two half-size products cost more than one whole one, RESULTS.md, session
    # 9); and the gate rows of db in blocks of 8
    cdef int rows = <int>(x.shape[0] * x.shape[1]), I = <int>x.shape[2]
    cdef int GH = <int>dgx.shape[2], blocks = (GH + 7) // 8
    cdef int r0 = <int>share(rows, w, workers), r1 = <int>share(rows, w + 1, workers)
    cdef int g0 = min(GH, 8 * <int>share(blocks, w, workers))
    cdef int g1 = min(GH, 8 * <int>share(blocks, w + 1, workers))
    # (8) after the loop, one GEMM each: dX = dG W_ih, dW_ih = dG^T X, dW_hh = dG^T H_prev
    if by_token:
        if need_dw_ih:
            scatter_token_rows(dgx, tokens, parts, w, workers)
    else:
        if need_dx and I > 0 and r1 > r0:
            input_gradient(r1 - r0, I, GH, &dgx[0, 0, 0] + r0 * GH, &w_ih[0, 0],
                           &dx[0, 0, 0] + r0 * I, tile)
        if need_dw_ih and I > 0:
            weight_gradient(GH, I, r1 - r0, &dgx[0, 0, 0] + r0 * GH, GH, &x[0, 0, 0] + r0 * I,
                            &dw_ih[w, 0, 0], tile)
    if need_dw_hh:
        weight_gradient(GH, H, r1 - r0, &dgh[0, 0, 0] + r0 * GH, GH, h_prev + r0 * H,
                        &dw_hh[w, 0, 0], tile)
    if g1 > g0:
        matmul_tn(g1 - g0, 1, rows, &dgx[0, 0, 0] + g0, GH, &ones[0], 0, &db_x[g0])
        if db_h != NULL:
            matmul_tn(g1 - g0, 1, rows, &dgh[0, 0, 0] + g0, GH, &ones[0], 0, db_h + g0)


cdef inline void after_loop(const floating[:, :, ::1] dgx, const floating[:, :, ::1] dgh,
                            const floating[:, :, ::1] x, const floating[:, ::1] w_ih,
                            const floating* h_prev, int H, floating[:, :, ::1] dx,
                            floating[:, :, ::1] dw_ih, floating[:, :, ::1] dw_hh, bint need_dx,
                            bint need_dw_ih, bint need_dw_hh, const floating[::1] ones,
                            floating[::1] db_x, floating* db_h,
                            const int64_t[:, ::1] tokens, bint by_token,
                            floating[:, :, ::1] parts, bint tile, int workers) noexcept nogil:
    """(8) after the loop, one GEMM each: dX = dG W_ih, dW_ih = dG^T X, dW_hh = dG^T H_prev,
    and the bias gradients db = dG^T 1 (ones: T*B of them) as matrix-vector products, split
    across ``workers`` workers: dX and the weight gradients by rows of the T*B (each worker
    its own partial dW_ih[w], dW_hh[w], summed by backward_finish), db by gate rows.

    dgx / dgh: gradients of the input-side / hidden-side pre-activations (the same array
    except for the GRU, whose db_h, the gradient of b_hh, is then not NULL); h_prev points at
    the (T, B, H) states each step read. Arrays that are not needed may be None. With token
    ids (by_token) there is no dX, and W_ih's gradient is the table's: each worker scatters
    its rows into its own part of ``parts`` (scatter_token_rows). ``tile``: the products may
    use the AVX-512 tile."""
    cdef int w
    for w in prange(workers, num_threads=workers, schedule="static", chunksize=1):
        _after_loop_share(dgx, dgh, x, w_ih, h_prev, H, dx, dw_ih, dw_hh, need_dx, need_dw_ih,
                          need_dw_hh, ones, db_x, db_h, tokens, by_token, parts, tile, w,
                          workers)


cdef inline object _staggered(tuple shape, object dtype, Py_ssize_t color):
    """A new C-contiguous array whose first element lies ``color`` x 1344 bytes (21 cache lines)
    past a 4 KB boundary, modulo 4 KB. Big arrays from malloc all start at about the same
    offset in their page, so element j of two of them has the same low 12 address bits, and a
    load from one right after a store to the other at that offset can wait for the store
    (4K aliasing) in the time loops, which walk several such arrays in step."""
    import numpy as np
    cdef Py_ssize_t nbytes = np.dtype(dtype).itemsize, n
    for n in shape:
        nbytes *= n
    buf = np.empty(nbytes + 8192, np.uint8)
    cdef size_t address = <size_t>cnp.PyArray_DATA(buf)  # (arr.ctypes costs microseconds)
    cdef Py_ssize_t start = (4096 - address % 4096) % 4096 + (color * 1344) % 4096
    return buf[start:start + nbytes].view(dtype).reshape(shape)


cdef inline tuple token_input(object x, object dtype):
    """(float input, token ids, whether x holds token ids) for the wrappers. A float x comes
    back as it is, with a placeholder for the ids; token ids come back with an empty (T, B, 0)
    float input, which keeps the shapes the loops read."""
    import numpy as np
    if x.ndim == 2:
        return np.empty(x.shape + (0,), dtype), x, True
    return x, np.zeros((1, 1), np.int64), False


cdef inline tuple forward_setup(object x, object w_hh, object bias, Py_ssize_t G):
    """What every forward wrapper needs after its argument checks: (x as floats, token ids,
    whether x holds token ids (token_input), the folded bias (zeros when there is none),
    workers, packed W_hh^T (packed_weights))."""
    import numpy as np
    from minigrad.fast.threads import kernel_workers
    x, tokens, by_token = token_input(x, w_hh.dtype)
    if bias is None:
        bias = np.zeros(G * w_hh.shape[1], w_hh.dtype)
    return (x, tokens, by_token, bias, kernel_workers(x.shape[1]),
            packed_weights(w_hh, True, x.shape[0]))


cdef inline tuple backward_setup(object x, object w_ih, object w_hh, object needs,
                                 Py_ssize_t G):
    """What every backward wrapper needs after its argument checks: (x as floats
    (token_input), dh_seq (new: it leaves the call), workers, packed W_hh (packed_weights),
    and ``grads``: the gradients of (8) (new; None when not needed; zeros when there are no
    steps, rows or units, as the loops then do not run) with what computing them reads (token
    ids among them), for gradients_after_loop and backward_finish)."""
    import numpy as np
    from minigrad.fast.threads import kernel_workers
    x, tokens, by_token = token_input(x, w_hh.dtype)
    (T, B, I), H, dt = x.shape, w_hh.shape[1], w_hh.dtype
    needs = (bool(needs[0]), bool(needs[1]), bool(needs[2]))
    cdef bint ran = T and B and H
    dx = _gradient((T, B, I), dt, 2, ran) if needs[0] and not by_token else None
    workers = kernel_workers(B)
    # the weight gradients: one partial sum per worker (after_loop), added by backward_finish
    dw_ih = _gradient((workers, G * H, I), dt, -1, ran) if needs[1] and not by_token else None
    dw_hh = _gradient((workers, G * H, H), dt, -1, ran) if needs[2] else None
    w_packed = packed_weights(w_hh, False, T)
    # the table's gradient with token ids: one part per worker (scatter_token_rows)
    parts = np.zeros((workers, w_ih.shape[0], G * H) if by_token and needs[1] else (1, 1, 1),
                     dt)
    grads = (x, w_ih, tokens, by_token, needs, dx, dw_ih, dw_hh, np.ones(T * B, dt), parts,
             workers, w_packed.shape[0] != 0 and packed_gemm_enabled())
    return x, _gradient((T, B, H), dt, 1, ran), workers, w_packed, grads


cdef inline int gradients_after_loop(tuple grads, const floating[:, :, ::1] dgx,
                                     const floating[:, :, ::1] dgh,
                                     const floating[:, :, ::1] hbuf, bint reverse,
                                     floating[::1] db_x, floating* db_h) except -1:
    """(8) for every backward driver, once its time loop has filled the gate gradients dgx,
    dgh (the same array but for the GRU, which alone has db_h, else NULL): after_loop on the
    arrays of ``grads`` (backward_setup), H_prev being the states in hbuf each step read.
    Called with the GIL (it reads ``grads``); after_loop runs without."""
    cdef const floating[:, :, ::1] x = grads[0]
    cdef const floating[:, ::1] w_ih = grads[1]
    cdef const int64_t[:, ::1] tokens = grads[2]
    cdef bint by_token = grads[3], need_dx = grads[4][0], need_ih = grads[4][1]
    cdef bint need_hh = grads[4][2], tile = grads[11]
    cdef floating[:, :, ::1] dx = grads[5]
    cdef floating[:, :, ::1] dw_ih = grads[6]
    cdef floating[:, :, ::1] dw_hh = grads[7]
    cdef const floating[::1] ones = grads[8]
    cdef floating[:, :, ::1] parts = grads[9]
    cdef int workers = grads[10]
    with nogil:
        after_loop(dgx, dgh, x, w_ih, &hbuf[1 if reverse else 0, 0, 0], <int>hbuf.shape[2], dx,
                   dw_ih, dw_hh, need_dx, need_ih, need_hh, ones, db_x, db_h, tokens, by_token,
                   parts, tile, workers)
    return 0


cdef inline tuple backward_finish(tuple grads):
    """The end of every backward wrapper: (dX, dW_ih, dW_hh) of ``grads`` (backward_setup),
    the weight gradients summed from the workers' partial sums (with token ids dW_ih is the
    projected table's, from the workers' parts)."""
    dx, dw_ih, dw_hh, parts = grads[5], grads[6], grads[7], grads[9]
    if grads[3] and grads[4][1]:
        dw_ih = parts
    return dx, _summed(dw_ih), _summed(dw_hh)


cdef inline object _summed(object partials):
    # the workers' partial sums (workers, ...) added in worker order; one worker's is the sum
    if partials is None:
        return None
    return partials[0] if partials.shape[0] == 1 else partials.sum(axis=0)


cdef inline object _gradient(tuple shape, object dtype, Py_ssize_t color, bint ran):
    # backward_setup's arrays: fresh (color >= 0) or np.empty (color < 0); zeros when the
    # loops do not run (no steps, rows or units), as they then write nothing
    import numpy as np
    if not ran:
        return np.zeros(shape, dtype)
    return fresh(shape, dtype, color) if color >= 0 else np.empty(shape, dtype)


cdef inline object fresh(tuple shape, object dtype, Py_ssize_t color):
    """A new array (staggered within its page, see _staggered) for anything that leaves the
    kernel call: outputs, final states, gradients, the forward's cache. Never reused: an array
    that reached a user (or a view of it) must keep its values. Arrays under 16 KB (a
    one-step call's) are plain np.empty: staggering them gains nothing and costs a few
    microseconds."""
    import numpy as np
    cdef Py_ssize_t n = 1, d
    for d in shape:
        n *= d
    if n * np.dtype(dtype).itemsize < 16384:
        return np.empty(shape, dtype)
    return _staggered(shape, dtype, color)


cdef inline object scratch(dict pool, tuple shape, object dtype):
    """A work array that never leaves one kernel call (the wrapper neither returns it nor keeps
    it in the cache nor hands it to anyone): one of this shape and dtype from the pool when
    the pool's reference is the only one left, else a new one (kept in the pool; staggered
    within its page, see _staggered). A call that holds a scratch array holds a reference to
    it, so two calls (two Python threads) never get the same one. Reusing the big per-step
    buffers saves the page faults of freshly mapped memory. The contents are stale: callers
    must write every element before reading it."""
    key = (shape, dtype)
    cdef list arrays = pool.get(key)
    cdef Py_ssize_t k
    if arrays is None:
        if len(pool) >= 64:
            pool.clear()
        arrays = []
        pool[key] = arrays
    for k in range(len(arrays)):
        if _Py_REFCNT(PyList_GET_ITEM(arrays, k)) == 1:  # only this list holds it
            return <object>PyList_GET_ITEM(arrays, k)
    arr = _staggered(shape, dtype, len(pool) * 5 + len(arrays))
    if len(arrays) >= 4:
        del arrays[0]
    arrays.append(arr)
    return arr


cdef inline floating exp_(floating a) noexcept nogil:
    if floating is float:
        return mg_expf(a)
    else:
        return mg_exp(a)


cdef inline floating sigmoid(floating a) noexcept nogil:
    # exp_ clamps its argument, so 1 / (1 + e^-a) is safe for any a (no overflow, no nan);
    # `one` keeps float32 arithmetic in float32 (a literal 1 / ... would be a double division)
    cdef floating one = 1
    return one / (one + exp_(-a))


cdef inline floating tanh_(floating a) noexcept nogil:
    # tanh(a) = 2 sigmoid(2a) - 1
    cdef floating one = 1
    return (one + one) / (one + exp_(-2 * a)) - one
