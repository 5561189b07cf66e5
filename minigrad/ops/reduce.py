"""Reductions: sum, mean, max over axes; softmax and log_softmax along an axis."""
from __future__ import annotations

import numpy as np

from minigrad.function import Function


def _expand(grad: np.ndarray, in_shape, axis, keepdims: bool) -> np.ndarray:
    """Put back the reduced axes as size-1 axes so grad broadcasts against the input."""
    if axis is None or keepdims:
        return grad.reshape([1] * len(in_shape)) if axis is None and not keepdims else grad
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.expand_dims(grad, tuple(a % len(in_shape) for a in axes))


class Sum(Function):
    op_name = "sum"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.in_shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, grad):
        g = _expand(grad, ctx.in_shape, ctx.axis, ctx.keepdims)
        return np.broadcast_to(g, ctx.in_shape).copy()


class Mean(Function):
    op_name = "mean"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.in_shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        out = np.asarray(a.mean(axis=axis, keepdims=keepdims))
        ctx.count = a.size // max(out.size, 1) if a.size else 1
        return out

    @staticmethod
    def backward(ctx, grad):
        g = _expand(grad, ctx.in_shape, ctx.axis, ctx.keepdims) / ctx.count
        return np.broadcast_to(g, ctx.in_shape).astype(grad.dtype)


class Max(Function):
    """Max over an axis (or all). The gradient goes to the arg-max elements; ties share it."""
    op_name = "max"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        out = a.max(axis=axis, keepdims=True)
        mask = a == out
        ctx.save_for_backward((mask / mask.sum(axis=axis, keepdims=True)).astype(a.dtype))
        ctx.in_shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return out if keepdims else np.asarray(np.squeeze(out, axis=axis))

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        g = _expand(grad, ctx.in_shape, ctx.axis, ctx.keepdims)
        return (g * share).astype(grad.dtype)


class Softmax(Function):
    op_name = "softmax"

    @staticmethod
    def forward(ctx, a, axis=-1):
        z = a - a.max(axis=axis, keepdims=True)
        e = np.exp(z)
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # dx_i = y_i (g_i - sum_j g_j y_j)
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    op_name = "log_softmax"

    @staticmethod
    def forward(ctx, a, axis=-1):
        z = a - a.max(axis=axis, keepdims=True)
        out = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # y = x - logsumexp(x)  =>  dx = g - softmax(x) * sum(g)
        return grad - np.exp(out) * grad.sum(axis=ctx.axis, keepdims=True)
