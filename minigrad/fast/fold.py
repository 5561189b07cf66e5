"""The embedding fold: a fused recurrent layer whose input is an ``nn.Embedding``'s output reads
the embedding table instead of the looked-up vectors.

The input projection of token v is W_ih e_v: it depends on the token only. So for a table E of
V rows the layer projects the table once, P = E W_ih^T (V, G*H) (``ProjectedTable``), and each
step looks its rows of P up (token ids into the recurrent kernels) instead of multiplying all
T*B looked-up vectors by W_ih. In backward the table's gradient comes through P (the gate
gradients summed per token), and the dX product is not needed. That pays when the table has at
most half as many rows as there are tokens (2V <= T*B); the fold applies only then.

What a user can observe does not change. The Embedding's output X stays an input of the fused
node (``FoldedSequence``), and its backward chooses, when it runs:
- X is watched (a hook or ``retain_grad`` on it waits for dL/dX): backward runs the plain way,
  dX = dG W_ih and dW_ih = dG^T X, and gives nothing to P, so the watch sees the true gradient
  and the table's gradient (through X's lookup node) is counted once;
- otherwise it gives dP to P (whose backward yields dE and dW_ih) and nothing to X.
Both give the same numbers up to rounding (tests/test_embedding_fold.py). A Tensor used
elsewhere as well gets those other gradients through its own node either way.

The hand-offs: ``nn.Embedding.forward`` calls ``remember_lookup``; the sequence layers ask
``source`` for their layer 0 and, when it finds one, hand the layer direction to ``sequence``.
``set_enabled(False)`` turns the fold off.
"""
from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import numpy as np

from minigrad.fast import kernels
from minigrad.fast.fused import kernel_backward, kernel_forward, remember
from minigrad.function import Function
from minigrad.tensor import Tensor

_ENABLED = True
_LOOKUPS: dict[int, tuple] = {}  # id(Embedding output) -> (weakref to it, ids, table, padding)


def set_enabled(flag: bool) -> bool:
    """Turn the fold on or off for every layer; returns the previous setting."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, bool(flag)
    return previous


def remember_lookup(out: Tensor, indices: Any, table: Tensor, padding_idx: int | None) -> None:
    """Note that ``out`` holds the rows ``indices`` of ``table`` (called by nn.Embedding). The
    note lives as long as ``out`` does."""
    key = id(out)
    ids = np.asarray(indices.data if isinstance(indices, Tensor) else indices, dtype=np.int64)
    _LOOKUPS[key] = (weakref.ref(out, lambda _ref, k=key: _LOOKUPS.pop(k, None)), ids, table,
                     padding_idx)


class Source(NamedTuple):
    """An Embedding output a layer reads: the tensor, its token ids time-major (T, B), the
    table, its padding row, and the input's layout ('tm', 'batch_first' or 'unbatched')."""
    x: Tensor
    ids: np.ndarray
    table: Tensor
    padding_idx: int | None
    layout: str


def source(x: Tensor, steps: int, batch: int, batch_first: bool,
           unbatched: bool) -> Source | None:
    """The lookup behind a layer's input ``x`` when the fold applies to it, else None."""
    entry = _LOOKUPS.get(id(x)) if _ENABLED else None
    if entry is None or entry[0]() is not x:
        return None
    _, ids, table, padding_idx = entry
    if 2 * table.shape[0] > steps * batch or ids.shape != x.shape[:-1]:
        return None
    layout = "unbatched" if unbatched else "batch_first" if batch_first else "tm"
    return Source(x, np.ascontiguousarray(_time_major(ids, layout)), table, padding_idx, layout)


def _time_major(a: np.ndarray, layout: str) -> np.ndarray:
    """ids (or vectors) in the layer's input layout -> time-major (T, B, ...)."""
    if layout == "unbatched":
        return a.reshape(a.shape[0], 1, *a.shape[1:])
    return np.ascontiguousarray(a.swapaxes(0, 1)) if layout == "batch_first" else a


def _input_layout(dx: np.ndarray, layout: str) -> np.ndarray:
    """A time-major gradient (T, B, I) -> the layout of the layer's input."""
    if layout == "unbatched":
        return dx.reshape(dx.shape[0], dx.shape[2])
    return np.ascontiguousarray(dx.swapaxes(0, 1)) if layout == "batch_first" else dx


def _watched(t: Tensor) -> bool:
    """Whether a hook (``retain_grad`` is one) waits for the gradient of t."""
    hooks = t._hooks if t._ctx is None else (t._ctx.output_hooks or {}).get(t._out_index)
    return bool(hooks)


class ProjectedTable(Function):
    """table (V, P) = weight (V, dim) @ proj (P, dim)^T: every row of an embedding table through
    the linear map proj (the layer's W_ih), once.

      (1) table = weight proj^T
      (2) dweight = dtable proj     (the padding_idx row gets none, as in Embedding)
      (3) dproj = dtable^T weight   (every row counts, the padding row included)

    That is a bias-free Linear layer applied to the table's rows: the Linear kernels."""
    op_name = "projected_table"

    @staticmethod
    def forward(ctx, weight, proj, padding_idx=None):
        ctx.padding_idx = padding_idx
        ctx.save_for_backward(weight, proj)
        return kernels.linear_forward(weight, proj, None)

    @staticmethod
    def backward(ctx, grad):
        weight, proj = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dweight, dproj, _ = kernels.linear_backward(np.ascontiguousarray(grad), weight, proj,
                                                    (needs[0], needs[1], False))
        if dweight is not None and ctx.padding_idx is not None:
            dweight[ctx.padding_idx] = 0
        return dweight, dproj


class FoldedSequence(Function):
    """One layer direction (mode 'LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU') reading token ids and
    the projected table P; X, the Embedding output, and W_ih are inputs too (module docstring).
    Forward arguments: x, table, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep (None where absent)."""
    op_name = "folded_sequence"

    @staticmethod
    def forward(ctx, x, table, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, *, mode, ids, layout,
                lengths, reverse, sink):
        outputs, cache = kernel_forward(mode, ids, h0, c0, table, w_hh, b_ih, b_hh, w_peep,
                                        lengths, reverse)
        ctx.save_for_backward(x, ids, table, w_ih, w_hh, w_peep, cache)
        ctx.layout = layout
        remember(ctx, mode, lengths, reverse, sink, b_ih, b_hh)
        return outputs

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn=None):
        x, ids, table, w_ih, w_hh, w_peep, cache = ctx.saved_tensors
        need = ctx.needs_input_grad
        # 1. who receives the input's gradient: X itself when watched, else the table
        watched = need[0] and _watched(ctx.parents[0])
        if watched:
            x_in, w_in, wants = _time_major(x, ctx.layout), w_ih, (True, need[4], need[5])
        else:
            x_in, w_in, wants = ids, table, (False, need[1], need[5])
        # 2. the same BPTT kernels as the unfolded layer
        grads = (grad_out, grad_hn) if grad_cn is None else (grad_out, grad_hn, grad_cn)
        dx, dh0, dc0, dw_in, dw_hh, db_ih, db_hh, dpeep = kernel_backward(
            ctx, grads, x_in, w_in, w_hh, w_peep, cache, wants)
        if watched:
            return (_input_layout(dx, ctx.layout), None, dh0, dc0, dw_in, dw_hh, db_ih, db_hh,
                    dpeep)
        return (None, dw_in, dh0, dc0, None, dw_hh, db_ih, db_hh, dpeep)


def sequence(mode: str, src: Source, h0: Tensor, c0: Tensor | None, weights: tuple,
             lengths: np.ndarray | None, reverse: bool,
             sink: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer direction over the Embedding output ``src.x`` through the projected table;
    same contract as ``minigrad.fast.fused.sequence``."""
    w_ih, w_hh, b_ih, b_hh, w_peep = weights
    table = ProjectedTable.apply(src.table, w_ih, padding_idx=src.padding_idx)
    result = FoldedSequence.apply(src.x, table, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep,
                                  mode=mode, ids=src.ids, layout=src.layout, lengths=lengths,
                                  reverse=reverse, sink=sink)
    return (result[0], result[1], result[2]) if mode == "LSTM" else (result[0], result[1], None)
