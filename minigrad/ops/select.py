"""Selections along an axis: argmax / argmin (integer results, no gradient), max / min with
their indices, and topk. The values' gradient goes back to the positions they were taken from.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minigrad.function import Function


class ValuesIndices(NamedTuple):
    """``(values, indices)``, what ``max`` / ``min`` with ``dim=`` and ``topk`` return (as
    PyTorch's ``torch.return_types``); unpack it or read ``.values`` and ``.indices``."""
    values: object
    indices: object


def _check_axis(op: str, a: np.ndarray, axis) -> int:
    if a.ndim == 0 and axis in (0, -1):
        return 0
    if not isinstance(axis, (int, np.integer)) or not -a.ndim <= axis < a.ndim:
        raise ValueError(f"{op}: dim {axis!r} is out of range for shape {a.shape}")
    return int(axis) % a.ndim


class ArgExtreme(Function):
    """Index of the largest (``largest=True``) or smallest element along an axis (None: of
    the flattened input), the first one on ties; int64, carries no gradient."""
    op_name = "argmax_argmin"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, largest=True):
        op = "argmax" if largest else "argmin"
        if a.size == 0:
            raise ValueError(f"{op}: the input of shape {a.shape} has no elements")
        pick = np.argmax if largest else np.argmin
        if axis is None:
            idx = np.asarray(pick(a))
            return idx.reshape((1,) * a.ndim) if keepdims else idx.astype(np.int64)
        axis = _check_axis(op, a, axis)
        if a.ndim == 0:
            return np.zeros((), np.int64)
        return pick(a, axis=axis, keepdims=keepdims).astype(np.int64)

    @staticmethod
    def backward(ctx, grad):
        return None


class ExtremeAlong(Function):
    """``(values, indices)`` of the largest (or smallest) element along ``axis`` (the first on
    ties, as torch). Only the picked element of each slice gets the value's gradient."""
    op_name = "max_min_along"

    @staticmethod
    def forward(ctx, a, axis, keepdims=False, largest=True):
        op = "max" if largest else "min"
        if a.ndim == 0:
            _check_axis(op, a, axis)
            ctx.axis, ctx.in_shape, ctx.idx = None, a.shape, None
            return a.copy(), np.zeros((), np.int64)
        axis = _check_axis(op, a, axis)
        if a.shape[axis] == 0:
            raise ValueError(f"{op}: dim {axis} of shape {a.shape} has no elements")
        idx = (np.argmax if largest else np.argmin)(a, axis=axis, keepdims=True)
        values = np.take_along_axis(a, idx, axis=axis)
        ctx.axis, ctx.in_shape, ctx.idx = axis, a.shape, idx
        if not keepdims:
            values, idx = np.squeeze(values, axis), np.squeeze(idx, axis)
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        if ctx.axis is None:
            return grad_values
        # 1. values = a[..., idx, ...] along axis  =>  scatter grad back to idx (one per slice)
        full = np.zeros(ctx.in_shape, dtype=grad_values.dtype)
        g = np.reshape(grad_values, ctx.idx.shape)
        np.put_along_axis(full, ctx.idx, g, axis=ctx.axis)
        return full


class TopK(Function):
    """The k largest (or smallest) elements along ``axis`` and their indices, in order when
    ``sorted`` (as ``torch.topk``). Their gradient is scattered back to where they came from."""
    op_name = "topk"

    @staticmethod
    def forward(ctx, a, k, axis=-1, largest=True, sorted=True):
        axis = _check_axis("topk", a, axis)
        n = a.shape[axis] if a.ndim else 1
        if not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
            raise ValueError(f"topk: k={k!r} must be an integer in [0, {n}] (dim {axis} of "
                             f"shape {a.shape})")
        a1 = a.reshape(1) if a.ndim == 0 else a
        key = -a1 if largest else a1
        # a stable sort keeps the first of equal elements first
        order = np.argsort(key, axis=axis, kind="stable")
        idx = np.take(order, np.arange(k), axis=axis)
        if not sorted:
            idx = np.sort(idx, axis=axis)
        values = np.take_along_axis(a1, idx, axis=axis)
        ctx.axis, ctx.in_shape, ctx.idx = axis, a.shape, idx
        if a.ndim == 0:
            values, idx = values.reshape(()), idx.reshape(())
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        # the k indices of a slice are distinct: a plain scatter, no accumulation needed
        full = np.zeros(ctx.in_shape if ctx.in_shape else (1,), dtype=grad_values.dtype)
        np.put_along_axis(full, ctx.idx, np.reshape(grad_values, ctx.idx.shape), axis=ctx.axis)
        return full.reshape(ctx.in_shape), None
