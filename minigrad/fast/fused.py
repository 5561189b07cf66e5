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
direction of a given mode through the matching Function.
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


def _grad(g: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(g, dtype=dtype)


def _zeros_state(h0, x, w_hh) -> np.ndarray:
    if h0 is not None:
        return h0
    return np.zeros((x.shape[1], w_hh.shape[1]), w_hh.dtype)


def _remember(ctx, lengths, reverse, sink, b_ih, b_hh) -> None:
    # what every backward below reads besides the saved arrays
    ctx.lengths, ctx.reverse, ctx.sink = lengths, bool(reverse), sink
    ctx.has_bias = (b_ih is not None, b_hh is not None)


def _sink(ctx, dh_seq: np.ndarray) -> None:
    if ctx.sink is not None:
        ctx.sink(dh_seq)


class RNNSequence(Function):
    """Elman RNN over a whole sequence, tanh or relu."""
    op_name = "rnn_sequence"

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, *, nonlinearity="tanh", lengths=None,
                reverse=False, hidden_grad_sink=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"rnn_sequence: nonlinearity must be 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        L = check_lengths("rnn_sequence", lengths, x.shape[0], x.shape[1])
        relu = nonlinearity == "relu"
        out, h_n, cache = kernels.rnn_forward(x, _zeros_state(h0, x, w_hh), w_ih, w_hh, b_ih,
                                              b_hh, L, bool(reverse), relu)
        ctx.save_for_backward(x, w_ih, w_hh, cache)
        ctx.relu = relu
        _remember(ctx, L, reverse, hidden_grad_sink, b_ih, b_hh)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x, w_ih, w_hh, cache = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh0, dw_ih, dw_hh, db, dh_seq = kernels.rnn_backward(
            _grad(grad_out, w_hh.dtype), _grad(grad_hn, w_hh.dtype), x, w_ih, w_hh, ctx.lengths,
            ctx.reverse, ctx.relu, cache, (need[0], need[2], need[3]))
        _sink(ctx, dh_seq)
        return (dx, dh0, dw_ih, dw_hh, db if ctx.has_bias[0] else None,
                db.copy() if ctx.has_bias[1] else None)


class LSTMSequence(Function):
    """LSTM over a whole sequence, gate order i, f, g, o; optional peepholes (3, H)."""
    op_name = "lstm_sequence"

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, *, lengths=None,
                reverse=False, hidden_grad_sink=None):
        L = check_lengths("lstm_sequence", lengths, x.shape[0], x.shape[1])
        out, h_n, c_n, cache = kernels.lstm_forward(
            x, _zeros_state(h0, x, w_hh), _zeros_state(c0, x, w_hh), w_ih, w_hh, b_ih, b_hh,
            w_peep, L, bool(reverse))
        ctx.save_for_backward(x, w_ih, w_hh, w_peep, cache)
        _remember(ctx, L, reverse, hidden_grad_sink, b_ih, b_hh)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn):
        x, w_ih, w_hh, w_peep, cache = ctx.saved_tensors
        need = ctx.needs_input_grad
        dt = w_hh.dtype
        dx, dh0, dc0, dw_ih, dw_hh, db, dpeep, dh_seq = kernels.lstm_backward(
            _grad(grad_out, dt), _grad(grad_hn, dt), _grad(grad_cn, dt), x, w_ih, w_hh, w_peep,
            ctx.lengths, ctx.reverse, cache, (need[0], need[3], need[4]))
        _sink(ctx, dh_seq)
        return (dx, dh0, dc0, dw_ih, dw_hh, db if ctx.has_bias[0] else None,
                db.copy() if ctx.has_bias[1] else None, dpeep)


class GRUSequence(Function):
    """GRU over a whole sequence, gate order r, z, n (PyTorch's formulation)."""
    op_name = "gru_sequence"

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, *, lengths=None, reverse=False,
                hidden_grad_sink=None):
        L = check_lengths("gru_sequence", lengths, x.shape[0], x.shape[1])
        out, h_n, cache = kernels.gru_forward(x, _zeros_state(h0, x, w_hh), w_ih, w_hh, b_ih,
                                              b_hh, L, bool(reverse))
        ctx.save_for_backward(x, w_ih, w_hh, cache)
        _remember(ctx, L, reverse, hidden_grad_sink, b_ih, b_hh)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x, w_ih, w_hh, cache = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dh_seq = kernels.gru_backward(
            _grad(grad_out, w_hh.dtype), _grad(grad_hn, w_hh.dtype), x, w_ih, w_hh, ctx.lengths,
            ctx.reverse, cache, (need[0], need[2], need[3]))
        _sink(ctx, dh_seq)
        return (dx, dh0, dw_ih, dw_hh, db_ih if ctx.has_bias[0] else None,
                db_hh if ctx.has_bias[1] else None)


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
