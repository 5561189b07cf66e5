"""Reductions: sum, mean, max, min, var, p-norm over axes; cumsum, softmax and log_softmax
along an axis."""
from __future__ import annotations

import math

import numpy as np

from minigrad.fast import kernels
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
        # d sum / d a_i = 1: the gradient copied back over the reduced axes
        out = np.empty(ctx.in_shape, grad.dtype)
        out[...] = _expand(grad, ctx.in_shape, ctx.axis, ctx.keepdims)
        return out


# float16 is left to np.mean, which accumulates it in float32; integers become float64 there
_SUM_THEN_DIVIDE = (np.dtype(np.float32), np.dtype(np.float64))


def mean_array(a: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
    """``a.mean(axis, keepdims)`` as an ndarray. For float32 / float64 it is what np.mean does
    for them (a sum, then one division by the count) without its Python-level bookkeeping: the
    same bits, a few microseconds less (Mean and LayerNorm use it)."""
    if a.size and a.dtype in _SUM_THEN_DIVIDE:
        total = np.asarray(np.add.reduce(a, axis=axis, keepdims=keepdims))
        # the sum is ours: divided in place
        return np.divide(total, a.size // max(total.size, 1), out=total)
    return np.asarray(a.mean(axis=axis, keepdims=keepdims))


class Mean(Function):
    op_name = "mean"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.in_shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        out = mean_array(a, axis, keepdims)
        ctx.count = a.size // max(out.size, 1) if a.size else 1
        return out

    @staticmethod
    def backward(ctx, grad):
        # d mean / d a_i = 1 / count for every a_i that went into the mean (divided before
        # it is spread over the input's shape: the same bits, one broadcast copy)
        out = np.empty(ctx.in_shape, grad.dtype)
        out[...] = _expand(grad / ctx.count, ctx.in_shape, ctx.axis, ctx.keepdims)
        return out


class Max(Function):
    """Max over an axis (or all). The gradient goes to the arg-max elements; ties share it."""
    op_name = "max"
    pick = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx, a, axis=None, keepdims=False):
        if a.size == 0:
            raise ValueError(f"{cls.op_name}: the input of shape {a.shape} has no elements")
        out = cls.pick(a, axis=axis, keepdims=True)
        mask = a == out
        ctx.save_for_backward((mask / mask.sum(axis=axis, keepdims=True)).astype(a.dtype))
        ctx.in_shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return out if keepdims else np.asarray(np.squeeze(out, axis=axis))

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        g = _expand(grad, ctx.in_shape, ctx.axis, ctx.keepdims)
        return (g * share).astype(grad.dtype)


class Min(Max):
    """Min over an axis (or all). The gradient goes to the arg-min elements; ties share it."""
    op_name = "min"
    pick = staticmethod(np.min)


def _count(shape, axis) -> int:
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return math.prod(shape[a] for a in axes)


class Var(Function):
    """Variance over an axis (or all) with divisor N - correction (1: unbiased, as torch)."""
    op_name = "var"

    @staticmethod
    def forward(ctx, a, axis=None, correction=1, keepdims=False):
        dev = a - a.mean(axis=axis, keepdims=True)
        ctx.divisor = _count(a.shape, axis) - correction
        ctx.save_for_backward(dev)
        ctx.in_shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        with np.errstate(divide="ignore", invalid="ignore"):  # N <= correction: inf/nan as torch
            return np.asarray((dev * dev).sum(axis=axis, keepdims=keepdims) / ctx.divisor,
                              dtype=a.dtype)

    @staticmethod
    def backward(ctx, grad):
        (dev,) = ctx.saved_tensors
        # v = sum (x - m)^2 / D  =>  dv/dx_i = 2 (x_i - m) / D  (the mean's term sums to zero)
        g = _expand(grad, ctx.in_shape, ctx.axis, ctx.keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * dev * (2.0 / ctx.divisor)).astype(grad.dtype)


class Norm(Function):
    """The p-norm (sum |x|^p)^(1/p) over an axis (or all); p = inf is the largest |x|."""
    op_name = "norm"

    @staticmethod
    def forward(ctx, a, p=2.0, axis=None, keepdims=False):
        try:
            p = float(p)
        except (TypeError, ValueError):
            p = float("nan")
        if not p > 0:
            raise ValueError(f"norm: p must be a positive number, inf or 'fro', got {p!r} "
                             f"(input {a.shape})")
        mag = np.abs(a)
        if np.isinf(p):
            out = mag.max(axis=axis, keepdims=True) if a.size else np.zeros((), a.dtype)
        else:
            out = (mag ** p).sum(axis=axis, keepdims=True) ** (1.0 / p)
        ctx.save_for_backward(a, out)
        ctx.p, ctx.in_shape, ctx.axis, ctx.keepdims = p, a.shape, axis, keepdims
        return np.asarray(out if keepdims else np.squeeze(out, axis=axis), dtype=a.dtype)

    @staticmethod
    def backward(ctx, grad):
        a, n = ctx.saved_tensors
        p, g = ctx.p, _expand(grad, ctx.in_shape, ctx.axis, ctx.keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.isinf(p):
                # 1. inf: d max|x| = sign(x) on the largest |x| (ties share it)
                top = np.abs(a) == n
                local = np.sign(a) * top / top.sum(axis=ctx.axis, keepdims=True)
            elif p == 1.0:
                # 2. p = 1: d sum|x| = sign(x)
                local = np.sign(a)
            else:
                # 3. d n / d x_i = sign(x_i) |x_i|^(p-1) / n^(p-1); at n == 0 taken as 0
                local = np.sign(a) * np.abs(a) ** (p - 1) / n ** (p - 1)
                local = np.where(n == 0, 0.0, local)
        return (g * local).astype(grad.dtype)


class CumSum(Function):
    """Running sum along an axis (None: over the flattened input, as numpy)."""
    op_name = "cumsum"

    @staticmethod
    def forward(ctx, a, axis=None):
        ctx.in_shape, ctx.axis = a.shape, axis
        return np.cumsum(a, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        # y_j = sum_{i<=j} x_i  =>  dx_i = sum_{j>=i} g_j: a running sum from the end
        axis = 0 if ctx.axis is None else ctx.axis
        g = grad.reshape(-1) if ctx.axis is None else grad
        dx = np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)
        return dx.reshape(ctx.in_shape)


class Softmax(Function):
    op_name = "softmax"

    @staticmethod
    def forward(ctx, a, axis=-1):
        # (ufunc reductions directly: a.max / a.sum go through numpy's Python-level wrappers,
        # microseconds on the small rows of an attention step; kernels.sub / div / mul are
        # numpy's - / *, compiled for the reduced axis kept as a column or a row)
        z = kernels.sub(a, np.maximum.reduce(a, axis=axis, keepdims=True))
        e = np.exp(z)
        y = kernels.div(e, np.add.reduce(e, axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # dx_i = y_i (g_i - sum_j g_j y_j)
        return kernels.mul(y, kernels.sub(grad, np.add.reduce(kernels.mul(grad, y),
                                                              axis=ctx.axis, keepdims=True)))


class LogSoftmax(Function):
    op_name = "log_softmax"

    @staticmethod
    def forward(ctx, a, axis=-1):
        z = kernels.sub(a, np.maximum.reduce(a, axis=axis, keepdims=True))
        out = kernels.sub(z, np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True)))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # y = x - logsumexp(x)  =>  dx = g - softmax(x) * sum(g)
        return kernels.sub(grad, kernels.mul(np.exp(out),
                                             np.add.reduce(grad, axis=ctx.axis, keepdims=True)))
