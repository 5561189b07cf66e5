"""Pure-numpy twins of the recurrent kernels in src_ext/ (RNN, LSTM, GRU over a sequence).

Same signatures as the compiled kernels in src_ext/rnn_kernels.pyx, lstm_kernels.pyx and
gru_kernels.pyx; derivation steps are numbered identically there. This file is the readable
specification of backpropagation through time (BPTT):

* forward: (1) one GEMM projects every time step's input at once, biases folded in;
  then per step only the recurrent product h @ W_hh^T and the gate nonlinearities.
* backward: one reverse loop carries dh (and dc) from step to step, storing every step's
  gate gradients dG; (8) after the loop dW_ih = dG^T X, dW_hh = dG^T H_prev, dX = dG W_ih.

Layout: x (T, B, I) time-major, h0/c0 (B, H), weights as PyTorch lays them out
(w_ih (G*H, I), w_hh (G*H, H)). ``lengths`` (int64 (B,) or None): row b is active at time
position t iff t < lengths[b]; inactive rows carry their state unchanged and output zero.
``reverse`` walks t = T-1 .. 0, so a row starts at its own last step L_b - 1.
Token input: x may instead be int64 token ids (T, B), with w_ih a table (V, G*H) whose row v is
the projection of token v (for an Embedding E and the layer's W_ih, the table E W_ih^T).
That is a one-hot input x with W_ih = table^T: (1) looks
the rows up instead of multiplying, backward has no dx, and its dw_ih is the table's gradient
(dG_x's rows summed per token, in the table's (V, G*H) layout).
The hidden states live in ``hbuf`` (T+1, B, H): forward direction hbuf[0] = h0 and
hbuf[t+1] = state after time t; reverse hbuf[T] = h0 and hbuf[t] = state after time t. So
H_prev, the state each step reads, is the contiguous slice hbuf[:T] (forward) or hbuf[1:].
"""
from __future__ import annotations

import numpy as np

from minigrad.ops.stable import stable_sigmoid


def _steps(T: int, reverse: bool, backward: bool = False) -> range:
    """Time positions in processing order (forward pass) or in BPTT order (backward pass)."""
    forward_order = range(T - 1, -1, -1) if reverse else range(T)
    return forward_order[::-1] if backward else forward_order


def _slots(t: int, reverse: bool) -> tuple[int, int]:
    """hbuf indices (previous state, new state) of the step at time position t."""
    return (t + 1, t) if reverse else (t, t + 1)


def _active(t: int, lengths: np.ndarray) -> np.ndarray:
    return (t < lengths)[:, None]


def _project(x, w_ih, bias):
    # (1) input projection for every time step: ONE matrix product (T*B, I) @ (I, G*H)
    if x.ndim == 2:  # token ids: the projection of token v is the table's row v
        a = w_ih[x]
    else:
        T, B, I = x.shape
        a = (x.reshape(T * B, I) @ w_ih.T).reshape(T, B, w_ih.shape[0])
    if bias is not None:
        a += bias
    return a


def _fold(b_ih, b_hh):
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else b_ih + b_hh


def _after_loop(dgx, dgh, x, w_ih, h_prev, needs):
    # (8) after the loop, one GEMM each: dX = dG W_ih, dW_ih = dG^T X, dW_hh = dG^T H_prev
    T, B = x.shape[:2]
    gx, gh = dgx.reshape(T * B, dgx.shape[2]), dgh.reshape(T * B, dgh.shape[2])
    if x.ndim == 2:  # token ids: no dX; the table's row v gets the rows of dG_x of token v
        dx, dw_ih = None, None
        if needs[1]:
            dw_ih = np.zeros_like(w_ih)
            np.add.at(dw_ih, x.reshape(-1), gx)
    else:
        dx = (gx @ w_ih).reshape(x.shape) if needs[0] else None
        dw_ih = gx.T @ x.reshape(T * B, x.shape[2]) if needs[1] else None
    dw_hh = gh.T @ h_prev.reshape(T * B, h_prev.shape[2]) if needs[2] else None
    return dx, dw_ih, dw_hh


# ---------------------------------------------------------------- Elman RNN (G = 1) ----------
def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = relu if ``relu`` else tanh.

    Returns (out (T, B, H), h_n (B, H), cache)."""
    L = check_forward("rnn_forward", 1, x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths)
    T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
    a = _project(x, w_ih, _fold(b_ih, b_hh))
    hbuf = np.empty((T + 1, B, H), w_hh.dtype)
    hbuf[T if reverse else 0] = h0
    out = np.zeros((T, B, H), w_hh.dtype)
    for t in _steps(T, reverse):
        prev, cur = _slots(t, reverse)
        # (2) recurrent product, the only GEMM inside the loop
        pre = a[t] + hbuf[prev] @ w_hh.T
        # (3) h_t = act(pre)
        h = np.maximum(pre, 0) if relu else np.tanh(pre)
        act = _active(t, L)
        hbuf[cur] = np.where(act, h, hbuf[prev])
        out[t] = np.where(act, h, 0)
    return out, hbuf[0 if reverse else T].copy(), (hbuf,)


def rnn_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, relu, cache, needs):
    """Returns (dx, dh0, dw_ih, dw_hh, db, dh_seq); db is the gradient of b_ih and of b_hh."""
    hbuf, = cache
    L = check_backward("rnn_backward", 1, grad_out, grad_hn, None, x, w_ih, w_hh, None,
                       lengths, [(hbuf, 1, 1)])
    T, B, H = grad_out.shape
    dgates = np.zeros((T, B, H), w_hh.dtype)
    dh_seq = np.zeros((T, B, H), w_hh.dtype)
    dh = grad_hn.copy()
    for t in _steps(T, reverse, backward=True):
        prev, cur = _slots(t, reverse)
        act = _active(t, L)
        h = hbuf[cur]
        # (4) total gradient reaching h_t: from the output at t and from the next step
        dht = grad_out[t] + dh
        # (5) through the nonlinearity: tanh' = 1 - h^2, relu' = [h > 0]
        dpre = dht * (h > 0) if relu else dht * (1 - h * h)
        dgates[t] = np.where(act, dpre, 0)
        dh_seq[t] = np.where(act, dht, 0)
        # (7) dh_{t-1} = dG_t @ W_hh (GEMM in the loop); inactive rows carry dh unchanged
        dh = np.where(act, dgates[t] @ w_hh, dh)
    h_prev = hbuf[1:] if reverse else hbuf[:T]
    dx, dw_ih, dw_hh = _after_loop(dgates, dgates, x, w_ih, h_prev, needs)
    return dx, dh, dw_ih, dw_hh, dgates.sum(axis=(0, 1)), dh_seq


# ---------------------------------------------------------------- LSTM (G = 4: i f g o) -----
def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths, reverse):
    """LSTM with optional peepholes w_peep (3, H) = (p_i, p_f, p_o).

    Returns (out, h_n, c_n, cache); cache = (gates (T, B, 4H) activated i f g o, hbuf, cbuf,
    tanh_c (T, B, H))."""
    L = check_forward("lstm_forward", 4, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths)
    T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
    gates = _project(x, w_ih, _fold(b_ih, b_hh))
    hbuf = np.empty((T + 1, B, H), w_hh.dtype)
    cbuf = np.empty((T + 1, B, H), w_hh.dtype)
    hbuf[T if reverse else 0], cbuf[T if reverse else 0] = h0, c0
    tanh_c = np.zeros((T, B, H), w_hh.dtype)
    out = np.zeros((T, B, H), w_hh.dtype)
    for t in _steps(T, reverse):
        prev, cur = _slots(t, reverse)
        c_prev = cbuf[prev]
        # (2) recurrent product, the only GEMM inside the loop
        a = gates[t] + hbuf[prev] @ w_hh.T
        ai, af, ag, ao = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        if w_peep is not None:
            ai, af = ai + w_peep[0] * c_prev, af + w_peep[1] * c_prev
        # (3) i = σ(a_i [+ p_i c_{t-1}]), f = σ(a_f [+ p_f c_{t-1}]), g = tanh(a_g)
        i, f, g = stable_sigmoid(ai), stable_sigmoid(af), np.tanh(ag)
        # (4) c_t = f c_{t-1} + i g
        c = f * c_prev + i * g
        # (5) o = σ(a_o [+ p_o c_t]), h_t = o tanh(c_t)
        o = stable_sigmoid(ao + w_peep[2] * c if w_peep is not None else ao)
        tc = np.tanh(c)
        h = o * tc
        act = _active(t, L)
        gates[t] = np.where(act, np.concatenate([i, f, g, o], axis=1), 0)
        tanh_c[t] = np.where(act, tc, 0)
        hbuf[cur] = np.where(act, h, hbuf[prev])
        cbuf[cur] = np.where(act, c, c_prev)
        out[t] = np.where(act, h, 0)
    last = 0 if reverse else T
    return out, hbuf[last].copy(), cbuf[last].copy(), (gates, hbuf, cbuf, tanh_c)


def lstm_backward(grad_out, grad_hn, grad_cn, x, w_ih, w_hh, w_peep, lengths, reverse, cache,
                  needs):
    """Returns (dx, dh0, dc0, dw_ih, dw_hh, db, dw_peep, dh_seq); db is d b_ih = d b_hh."""
    gates, hbuf, cbuf, tanh_c = cache
    L = check_backward("lstm_backward", 4, grad_out, grad_hn, grad_cn, x, w_ih, w_hh, w_peep,
                       lengths, [(gates, 0, 4), (hbuf, 1, 1), (cbuf, 1, 1), (tanh_c, 0, 1)])
    T, B, H = grad_out.shape
    dgates = np.zeros((T, B, 4 * H), w_hh.dtype)
    dh_seq = np.zeros((T, B, H), w_hh.dtype)
    dpeep = np.zeros((3, H), w_hh.dtype) if w_peep is not None else None
    dh, dc = grad_hn.copy(), grad_cn.copy()
    for t in _steps(T, reverse, backward=True):
        prev, cur = _slots(t, reverse)
        act = _active(t, L)
        i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        c_prev, c, tc = cbuf[prev], cbuf[cur], tanh_c[t]
        # (1) dh_t = dout_t + dh carried from step t+1
        dht = grad_out[t] + dh
        # (2) do_pre = dh_t * tanh(c_t) * o * (1 - o)
        do = dht * tc * o * (1 - o)
        # (3) dc_t += dh_t * o * (1 - tanh(c_t)^2)   [+ p_o * do_pre]
        dct = dc + dht * o * (1 - tc * tc)
        if w_peep is not None:
            dct = dct + w_peep[2] * do
        # (4) di_pre = dc_t g i(1-i), df_pre = dc_t c_{t-1} f(1-f), dg_pre = dc_t i (1-g^2)
        di = dct * g * i * (1 - i)
        df = dct * c_prev * f * (1 - f)
        dg = dct * i * (1 - g * g)
        # (5) dc_{t-1} = dc_t * f   [+ p_i * di_pre + p_f * df_pre]
        dc_prev = dct * f
        if w_peep is not None:
            dc_prev = dc_prev + w_peep[0] * di + w_peep[1] * df
        dgates[t] = np.where(act, np.concatenate([di, df, dg, do], axis=1), 0)
        dh_seq[t] = np.where(act, dht, 0)
        if w_peep is not None:
            # (6) dp_i += di_pre c_{t-1}, dp_f += df_pre c_{t-1}, dp_o += do_pre c_t
            dpeep[0] += (np.where(act, di, 0) * c_prev).sum(axis=0)
            dpeep[1] += (np.where(act, df, 0) * c_prev).sum(axis=0)
            dpeep[2] += (np.where(act, do, 0) * c).sum(axis=0)
        # (7) dh_{t-1} = dG_t @ W_hh (GEMM in the loop); inactive rows carry dh, dc unchanged
        dh = np.where(act, dgates[t] @ w_hh, dh)
        dc = np.where(act, dc_prev, dc)
    h_prev = hbuf[1:] if reverse else hbuf[:T]
    dx, dw_ih, dw_hh = _after_loop(dgates, dgates, x, w_ih, h_prev, needs)
    return dx, dh, dc, dw_ih, dw_hh, dgates.sum(axis=(0, 1)), dpeep, dh_seq


# ---------------------------------------------------------------- GRU (G = 3: r z n) --------
def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    """r = σ(.), z = σ(.), n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1-z) n + z h.

    Returns (out, h_n, cache); cache = (gates (T, B, 3H) activated r z n,
    hn (T, B, H) = W_hn h_{t-1} + b_hn, hbuf)."""
    L = check_forward("gru_forward", 3, x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths)
    T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
    # b_hr, b_hz fold into the projection; b_hn stays inside r * (W_hn h + b_hn)
    bias = None if b_hh is None else np.concatenate([b_hh[:2 * H], np.zeros(H, w_hh.dtype)])
    gates = _project(x, w_ih, _fold(b_ih, bias))
    hn_buf = np.zeros((T, B, H), w_hh.dtype)
    hbuf = np.empty((T + 1, B, H), w_hh.dtype)
    hbuf[T if reverse else 0] = h0
    out = np.zeros((T, B, H), w_hh.dtype)
    for t in _steps(T, reverse):
        prev, cur = _slots(t, reverse)
        h_prev = hbuf[prev]
        # (2) recurrent product, the only GEMM inside the loop
        gh = h_prev @ w_hh.T
        # (3) r = σ(a_r + gh_r), z = σ(a_z + gh_z), hn = gh_n + b_hn
        r = stable_sigmoid(gates[t, :, :H] + gh[:, :H])
        z = stable_sigmoid(gates[t, :, H:2 * H] + gh[:, H:2 * H])
        hn = gh[:, 2 * H:] + (b_hh[2 * H:] if b_hh is not None else 0)
        # (4) n = tanh(a_n + r hn), h_t = (1 - z) n + z h_{t-1}
        n = np.tanh(gates[t, :, 2 * H:] + r * hn)
        h = (1 - z) * n + z * h_prev
        act = _active(t, L)
        gates[t] = np.where(act, np.concatenate([r, z, n], axis=1), 0)
        hn_buf[t] = np.where(act, hn, 0)
        hbuf[cur] = np.where(act, h, h_prev)
        out[t] = np.where(act, h, 0)
    return out, hbuf[0 if reverse else T].copy(), (gates, hn_buf, hbuf)


def gru_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, cache, needs):
    """Returns (dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dh_seq)."""
    gates, hn_buf, hbuf = cache
    L = check_backward("gru_backward", 3, grad_out, grad_hn, None, x, w_ih, w_hh, None,
                       lengths, [(gates, 0, 3), (hn_buf, 0, 1), (hbuf, 1, 1)])
    T, B, H = grad_out.shape
    dgx = np.zeros((T, B, 3 * H), w_hh.dtype)   # gradient of the input-side pre-activations
    dgh = np.zeros((T, B, 3 * H), w_hh.dtype)   # gradient of the hidden-side W_hh h + b_hh
    dh_seq = np.zeros((T, B, H), w_hh.dtype)
    dh = grad_hn.copy()
    for t in _steps(T, reverse, backward=True):
        prev, _ = _slots(t, reverse)
        act = _active(t, L)
        r, z, n = (gates[t, :, k * H:(k + 1) * H] for k in range(3))
        hn, h_prev = hn_buf[t], hbuf[prev]
        # (1) dh_t = dout_t + dh carried from step t+1
        dht = grad_out[t] + dh
        # (2) dn_pre = dh_t (1 - z) (1 - n^2),  dz_pre = dh_t (h_{t-1} - n) z (1 - z)
        dn = dht * (1 - z) * (1 - n * n)
        dz = dht * (h_prev - n) * z * (1 - z)
        # (3) dr_pre = dn_pre hn r (1 - r);  d(hn) = dn_pre r
        dr = dn * hn * r * (1 - r)
        dgx[t] = np.where(act, np.concatenate([dr, dz, dn], axis=1), 0)
        dgh[t] = np.where(act, np.concatenate([dr, dz, dn * r], axis=1), 0)
        dh_seq[t] = np.where(act, dht, 0)
        # (7) dh_{t-1} = dh_t z + dGh_t @ W_hh (GEMM in the loop); inactive rows carry dh
        dh = np.where(act, dht * z + dgh[t] @ w_hh, dh)
    h_prev = hbuf[1:] if reverse else hbuf[:T]
    dx, dw_ih, dw_hh = _after_loop(dgx, dgh, x, w_ih, h_prev, needs)
    return dx, dh, dw_ih, dw_hh, dgx.sum(axis=(0, 1)), dgh.sum(axis=(0, 1)), dh_seq


# ---------------------------------------------------------------- argument checks -----------
def _fail(name: str, what: str, arrays: dict) -> None:
    shapes = ", ".join(f"{k} {getattr(v, 'shape', type(v).__name__)}" for k, v in arrays.items())
    raise ValueError(f"{name}: {what} (got {shapes})")


def _check_arrays(name: str, arrays: dict, expected: dict) -> None:
    """Every array: an ndarray of the same float dtype, C-contiguous, with the expected shape."""
    dtype = None
    for k, v in arrays.items():  # the usual case, in one pass; the loops below name the defect
        if v is None:
            continue
        if type(v) is not np.ndarray or v.shape != expected[k] or not v.flags.c_contiguous \
                or (dtype is not None and v.dtype != dtype):
            break
        dtype = v.dtype
    else:
        if dtype in (np.float32, np.float64):
            return
    present = {k: v for k, v in arrays.items() if v is not None}
    for k, v in present.items():
        if not isinstance(v, np.ndarray):
            _fail(name, f"{k} must be an ndarray, not {type(v).__name__}", present)
    dtypes = {v.dtype for v in present.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        _fail(name, "all arrays must share one dtype, float32 or float64; got "
              + ", ".join(f"{k} {v.dtype}" for k, v in present.items()), present)
    for k, v in present.items():
        if v.shape != expected[k]:
            _fail(name, f"{k} must have shape {expected[k]}", present)
        if not v.flags.c_contiguous:
            _fail(name, f"{k} must be C-contiguous", present)


def _check_lengths(name: str, lengths, T: int, B: int) -> np.ndarray:
    if lengths is None:
        return np.full(B, T, np.int64)
    if not isinstance(lengths, np.ndarray) or lengths.dtype != np.int64 or lengths.shape != (B,) \
            or not lengths.flags.c_contiguous:
        _fail(name, f"lengths must be a C-contiguous int64 ndarray of shape ({B},)",
              {"lengths": lengths})
    if B and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(f"{name}: lengths must lie in [0, {T}], got {lengths.tolist()}")
    return lengths


def check_forward(name, G, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths) -> np.ndarray:
    """Validate a forward kernel's arguments; return the lengths (T for every row if None)."""
    tokens = _check_tokens(name, x, w_ih, G)
    if not isinstance(x, np.ndarray) or x.ndim != (2 if tokens else 3) or \
            not isinstance(w_hh, np.ndarray) or w_hh.ndim != 2:
        _fail(name, "x must be an ndarray (T, B, I) (or int64 token ids (T, B)) and w_hh an "
              "ndarray (G*H, H)", {"x": x, "w_hh": w_hh})
    T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
    arrays = {"x": None if tokens else x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh,
              "b_ih": b_ih, "b_hh": b_hh, "w_peep": w_peep}
    if h0 is None or (G == 4 and c0 is None) or not isinstance(w_ih, np.ndarray):
        _fail(name, "w_ih, h0 (and c0 for an LSTM) are required", arrays)
    expected = {"x": x.shape, "h0": (B, H), "c0": (B, H),
                "w_ih": (w_ih.shape[0], G * H) if tokens else (G * H, x.shape[-1]),
                "w_hh": (G * H, H), "b_ih": (G * H,), "b_hh": (G * H,), "w_peep": (3, H)}
    _check_arrays(name, arrays, expected)
    return _check_lengths(name, lengths, T, B)


def _check_tokens(name, x, w_ih, G) -> bool:
    """Whether x holds token ids; if so they must be a C-contiguous int64 (T, B) array of rows
    of the table w_ih (V, G*H)."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        return False
    if x.dtype != np.int64 or x.ndim != 2 or not x.flags.c_contiguous:
        _fail(name, "token ids x must be a C-contiguous int64 array (T, B)", {"x": x})
    if not isinstance(w_ih, np.ndarray) or w_ih.ndim != 2:
        _fail(name, "with token ids, w_ih must be the projected table (V, G*H)",
              {"x": x, "w_ih": w_ih})
    if x.size and (x.min() < 0 or x.max() >= w_ih.shape[0]):
        bad = x[(x < 0) | (x >= w_ih.shape[0])].flat[0]
        raise ValueError(f"{name}: token {int(bad)} is out of range for a table of "
                         f"{w_ih.shape[0]} rows (w_ih {w_ih.shape}, x {x.shape})")
    return True


def check_backward(name, G, grad_out, grad_hn, grad_cn, x, w_ih, w_hh, w_peep, lengths,
                   cache) -> np.ndarray:
    """Validate a backward kernel's arguments, including the forward's cache arrays given as
    (array, extra time slots, gates per hidden unit); return the lengths."""
    L = check_forward(name, G, x, grad_hn, grad_cn if G == 4 else None, w_ih, w_hh, None,
                      None, w_peep, lengths)
    T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
    arrays = {"grad_out": grad_out}   # x was checked with the weights above
    expected = {"grad_out": (T, B, H)}
    for k, (arr, extra, per) in enumerate(cache):
        arrays[f"cache[{k}]"] = arr
        expected[f"cache[{k}]"] = (T + extra, B, per * H)
    if any(v is None for v in arrays.values()):
        _fail(name, "grad_out and every cache array are required", arrays)
    _check_arrays(name, arrays, expected)
    return L
