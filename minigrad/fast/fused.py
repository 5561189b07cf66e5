"""Fused sequence Functions: one graph node runs a whole RNN / LSTM / GRU layer direction.

Same contract as the primitive ops (``Function`` with static forward/backward); the loops are
the kernels ``kernels.{rnn,lstm,gru}_{forward,backward}``. To read them: the numpy twins in
``minigrad/fast/_reference_rnn.py`` (the readable BPTT, numbered steps), the compiled loops in
``src_ext/{rnn,lstm,gru}_kernels.pyx`` (same step numbers; ``kernels.active()`` says which runs,
``kernels.use('numpy')`` picks the twins).

Public API (used by ``minigrad.nn.rnn``)::

    rnn_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, *, nonlinearity='tanh', lengths=None,
                 reverse=False, hidden_grad_sink=None) -> (out, h_n)
    lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep=None, *, lengths=None,
                  reverse=False, hidden_grad_sink=None) -> (out, h_n, c_n)
    gru_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, *, lengths=None, reverse=False,
                 hidden_grad_sink=None) -> (out, h_n)

x is (T, B, I) time-major, h0/c0 (B, H), weights in PyTorch's layout. ``hidden_grad_sink``,
if given, is called once during backward with the total gradient dL/dh_t, an ndarray (T, B, H).

``sequence`` is the one hand-off the sequence layers (``minigrad.nn.rnn``) make: one layer
direction of a given mode through the matching Function. The three Functions, and the
embedding fold's ``FoldedSequence`` (``minigrad.fast.fold``), reach the kernels through one
per-mode hand-off: ``kernel_forward`` and ``kernel_backward``.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from minigrad.fast import kernels
from minigrad.function import Function
from minigrad.ops.nn_ops import check_lengths
from minigrad.tensor import Tensor

Sink = Callable[[np.ndarray], object] | None


_OP = {"LSTM": "lstm_sequence", "GRU": "gru_sequence", "RNN_TANH": "rnn_sequence",
       "RNN_RELU": "rnn_sequence"}


def _zeros_state(h0, x, w_hh) -> np.ndarray:
    if h0 is not None:
        return h0
    return np.zeros((x.shape[1], w_hh.shape[1]), w_hh.dtype)


def kernel_forward(mode: str, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths,
                   reverse: bool) -> tuple[tuple, tuple]:
    """One layer direction through the mode's forward kernel (``kernels.lstm_forward``,
    ``gru_forward`` or ``rnn_forward``); mode is 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'.
    Returns ((out, h_n) or, for the LSTM, (out, h_n, c_n), the kernel's cache). x may be token
    ids (T, B) with w_ih a projected table (``minigrad.fast.fold``)."""
    h0, reverse = _zeros_state(h0, x, w_hh), bool(reverse)
    if mode == "LSTM":
        out, h_n, c_n, cache = kernels.lstm_forward(x, h0, _zeros_state(c0, x, w_hh), w_ih, w_hh,
                                                    b_ih, b_hh, w_peep, lengths, reverse)
        return (out, h_n, c_n), cache
    if mode == "GRU":
        out, h_n, cache = kernels.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse)
    else:
        out, h_n, cache = kernels.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse,
                                              mode == "RNN_RELU")
    return (out, h_n), cache


def remember(ctx, mode: str, lengths, reverse: bool, sink: Sink, b_ih, b_hh) -> None:
    """Keep on ctx what kernel_backward reads besides the saved arrays."""
    ctx.mode, ctx.lengths, ctx.reverse, ctx.sink = mode, lengths, bool(reverse), sink
    ctx.has_bias = (b_ih is not None, b_hh is not None)


def kernel_backward(ctx, grads: tuple, x, w_ih, w_hh, w_peep, cache, needs: tuple) -> tuple:
    """BPTT of kernel_forward for the output gradients ``grads`` ((grad_out, grad_hn) or, for
    the LSTM, (grad_out, grad_hn, grad_cn)); ``needs`` says which of dx, dW_ih, dW_hh to
    compute. Hands dL/dh_t (T, B, H) to the sink (see ``remember``). Returns (dx, dh0, dc0,
    dW_ih, dW_hh, db_ih, db_hh, dw_peep), None where there is none (no c0, peepholes or
    bias)."""
    g = [np.ascontiguousarray(a, dtype=w_hh.dtype) for a in grads]
    dc0 = dpeep = None
    if ctx.mode == "LSTM":
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, dpeep, dh_seq = kernels.lstm_backward(
            g[0], g[1], g[2], x, w_ih, w_hh, w_peep, ctx.lengths, ctx.reverse, cache, needs)
        db_hh = db_ih.copy() if ctx.has_bias[1] else None  # d b_ih = d b_hh
    elif ctx.mode == "GRU":
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dh_seq = kernels.gru_backward(
            g[0], g[1], x, w_ih, w_hh, ctx.lengths, ctx.reverse, cache, needs)
    else:
        dx, dh0, dw_ih, dw_hh, db_ih, dh_seq = kernels.rnn_backward(
            g[0], g[1], x, w_ih, w_hh, ctx.lengths, ctx.reverse, ctx.mode == "RNN_RELU", cache,
            needs)
        db_hh = db_ih.copy() if ctx.has_bias[1] else None  # d b_ih = d b_hh
    if ctx.sink is not None:
        ctx.sink(dh_seq)
    return (dx, dh0, dc0, dw_ih, dw_hh, db_ih if ctx.has_bias[0] else None,
            db_hh if ctx.has_bias[1] else None, dpeep)


def _forward(ctx, mode: str, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths, reverse,
             sink: Sink) -> tuple:
    # the three Functions' forward: kernel_forward, and what their backward needs
    L = check_lengths(_OP[mode], lengths, x.shape[0], x.shape[1])
    outputs, cache = kernel_forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, L, reverse)
    ctx.save_for_backward(x, w_ih, w_hh, w_peep, cache)
    remember(ctx, mode, L, reverse, sink, b_ih, b_hh)
    return outputs


def _backward(ctx, *grads: np.ndarray) -> tuple:
    # the three Functions' backward: kernel_backward; the positions of x, W_ih and W_hh among
    # the inputs are (0, 3, 4) for the LSTM (h0, c0 come first), else (0, 2, 3)
    x, w_ih, w_hh, w_peep, cache = ctx.saved_tensors
    need, k = ctx.needs_input_grad, 3 if ctx.mode == "LSTM" else 2
    return kernel_backward(ctx, grads, x, w_ih, w_hh, w_peep, cache,
                           (need[0], need[k], need[k + 1]))


class RNNSequence(Function):
    """Elman RNN over a whole sequence, tanh or relu."""
    op_name = "rnn_sequence"

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, *, nonlinearity="tanh", lengths=None,
                reverse=False, hidden_grad_sink=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"rnn_sequence: nonlinearity must be 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        mode = "RNN_RELU" if nonlinearity == "relu" else "RNN_TANH"
        return _forward(ctx, mode, x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths, reverse,
                        hidden_grad_sink)

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        dx, dh0, _, dw_ih, dw_hh, db_ih, db_hh, _ = _backward(ctx, grad_out, grad_hn)
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh


class LSTMSequence(Function):
    """LSTM over a whole sequence, gate order i, f, g, o; optional peepholes (3, H)."""
    op_name = "lstm_sequence"

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, *, lengths=None,
                reverse=False, hidden_grad_sink=None):
        return _forward(ctx, "LSTM", x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths,
                        reverse, hidden_grad_sink)

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn):
        return _backward(ctx, grad_out, grad_hn, grad_cn)


class GRUSequence(Function):
    """GRU over a whole sequence, gate order r, z, n (PyTorch's formulation)."""
    op_name = "gru_sequence"

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, *, lengths=None, reverse=False,
                hidden_grad_sink=None):
        return _forward(ctx, "GRU", x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths, reverse,
                        hidden_grad_sink)

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        dx, dh0, _, dw_ih, dw_hh, db_ih, db_hh, _ = _backward(ctx, grad_out, grad_hn)
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh


def rnn_sequence(x: Tensor | np.ndarray, h0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                 b_ih: Tensor | None, b_hh: Tensor | None, *, nonlinearity: str = "tanh",
                 lengths: np.ndarray | None = None, reverse: bool = False,
                 hidden_grad_sink: Sink = None) -> tuple[Tensor, Tensor]:
    """One Elman-RNN layer direction over x (T, B, I); returns (out (T, B, H), h_n (B, H))."""
    return RNNSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity,
                             lengths=lengths, reverse=reverse, hidden_grad_sink=hidden_grad_sink)


def lstm_sequence(x: Tensor | np.ndarray, h0: Tensor | None, c0: Tensor | None, w_ih: Tensor,
                  w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None,
                  w_peep: Tensor | None = None, *,
                  lengths: np.ndarray | None = None, reverse: bool = False,
                  hidden_grad_sink: Sink = None) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer direction over x (T, B, I); returns (out, h_n, c_n)."""
    return LSTMSequence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths=lengths,
                              reverse=reverse, hidden_grad_sink=hidden_grad_sink)


def gru_sequence(x: Tensor | np.ndarray, h0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                 b_ih: Tensor | None, b_hh: Tensor | None, *,
                 lengths: np.ndarray | None = None, reverse: bool = False,
                 hidden_grad_sink: Sink = None) -> tuple[Tensor, Tensor]:
    """One GRU layer direction over x (T, B, I); returns (out (T, B, H), h_n (B, H))."""
    return GRUSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=lengths, reverse=reverse,
                             hidden_grad_sink=hidden_grad_sink)


def sequence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple,
             lengths: np.ndarray | None, reverse: bool, hidden_grads: np.ndarray | None,
             fold_source=None) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer direction of an ``nn.RNN/LSTM/GRU`` as one fused node: ``mode`` is 'LSTM',
    'GRU', 'RNN_TANH' or 'RNN_RELU', ``weights`` (w_ih, w_hh, b_ih, b_hh, w_peep) with None
    where absent; returns (out (T, B, H), h_n, c_n or None). When ``hidden_grads`` (T, B, H) is
    given, backward adds dL/dh_t into it. ``fold_source`` (from ``minigrad.fast.fold.source``)
    makes the layer read an Embedding's table instead of ``x`` (the embedding fold)."""
    w_ih, w_hh, b_ih, b_hh, w_peep = weights
    sink = None if hidden_grads is None else functools.partial(np.add, hidden_grads,
                                                               out=hidden_grads)
    if fold_source is not None:
        from minigrad.fast import fold  # fold builds on this module's helpers
        return fold.sequence(mode, fold_source, h0, c0, weights, lengths, reverse, sink)
    if mode == "LSTM":
        return lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths=lengths,
                             reverse=reverse, hidden_grad_sink=sink)
    if mode == "GRU":
        out, h_n = gru_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=lengths,
                                reverse=reverse, hidden_grad_sink=sink)
    else:
        out, h_n = rnn_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=lengths,
                                reverse=reverse, hidden_grad_sink=sink,
                                nonlinearity="relu" if mode == "RNN_RELU" else "tanh")
    return out, h_n, None
