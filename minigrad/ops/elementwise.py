"""Elementwise primitives: arithmetic, activations, exp/log, dtype casts.

Broadcasting is undone by the engine (``engine.unbroadcast``), so each backward here returns a
gradient of the output's shape.

The four arithmetic operators go through ``kernels.add`` / ``sub`` / ``mul`` / ``div``: numpy's
``a + b`` and so on (their numpy twins are exactly that), which the compiled build runs for the
float cases of a graph of small ops (same shape, a bias row, a per-row column, one value)
without numpy's general broadcasting machinery, with the same bits.
"""
from __future__ import annotations

import numpy as np

from minigrad.fast import kernels
from minigrad.function import Function


class Add(Function):
    op_name = "add"

    @staticmethod
    def forward(ctx, a, b):
        return kernels.add(a, b)  # a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    op_name = "sub"

    @staticmethod
    def forward(ctx, a, b):
        return kernels.sub(a, b)  # a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad if ctx.needs_input_grad[1] else None


class Neg(Function):
    op_name = "neg"

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Mul(Function):
    op_name = "mul"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return kernels.mul(a, b)  # a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # d(a b)/da = b ; d(a b)/db = a
        return (kernels.mul(grad, b) if ctx.needs_input_grad[0] else None,
                kernels.mul(grad, a) if ctx.needs_input_grad[1] else None)


class Div(Function):
    op_name = "div"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return kernels.div(a, b)  # a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # d(a/b)/da = 1/b ; d(a/b)/db = -a/b^2  (the sign is put on b^2, often the smaller
        # operand under broadcasting: the same bits as (-grad) * a / b^2, one full pass fewer)
        return (kernels.div(grad, b) if ctx.needs_input_grad[0] else None,
                kernels.div(kernels.mul(grad, a), -(b * b)) if ctx.needs_input_grad[1]
                else None)


class Pow(Function):
    """x ** p for a scalar exponent p."""
    op_name = "pow"

    @staticmethod
    def forward(ctx, a, exponent):
        if a.dtype.kind in "iub":
            if not float(exponent).is_integer():
                a = a.astype(np.float32)  # as torch: an integer tensor to a fractional power
            elif exponent < 0:
                raise ValueError(f"pow: an integer tensor (shape {a.shape}) to a negative "
                                 f"integer power ({exponent:g}); make it float first")
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        if a.dtype.kind == "f" and exponent in (2, 0.5):
            # x^2 as x * x and x^0.5 as sqrt(x): the bits np.power gives, special values
            # included (tests/test_ops_fastpaths.py), in a third of its time or less
            return a * a if exponent == 2 else np.sqrt(a)
        return np.power(a, a.dtype.type(exponent))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        p = ctx.exponent
        if p == 0:  # x**0 == 1 everywhere (avoid 0 * 0**-1 = nan)
            return np.zeros_like(grad)
        if p == 2:  # x^(2-1) is x itself
            return grad * 2 * a
        # d(x^p)/dx = p x^(p-1)
        return grad * p * np.power(a, a.dtype.type(p - 1))


class Tanh(Function):
    op_name = "tanh"

    @staticmethod
    def forward(ctx, a):
        y = np.asarray(np.tanh(a))  # 0-d input: keep an ndarray (the kernel needs one)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # y = tanh(x)  =>  dy/dx = 1 - y^2:   dx = grad * (1 - y * y)
        # (one pass in the compiled kernel kernels.tanh_backward; its numpy twin is that line)
        return kernels.tanh_backward(y, np.asarray(grad, dtype=y.dtype, order="C"))


class Sigmoid(Function):
    op_name = "sigmoid"

    @staticmethod
    def forward(ctx, a):
        # y = 1 / (1 + exp(-a)): one pass in the compiled kernel kernels.sigmoid; its numpy
        # twin is minigrad.fast._reference.sigmoid (the formula in ops/stable.py)
        y = kernels.sigmoid(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # y = sigmoid(x)  =>  dy/dx = y (1 - y):   dx = grad * y * (1 - y)
        # (one pass in the compiled kernel kernels.sigmoid_backward; its numpy twin is that line)
        return kernels.sigmoid_backward(y, np.asarray(grad, dtype=y.dtype, order="C"))


class ReLU(Function):
    op_name = "relu"

    @staticmethod
    def forward(ctx, a):
        y = np.maximum(a, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (y > 0)


class Exp(Function):
    op_name = "exp"

    @staticmethod
    def forward(ctx, a):
        y = np.exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Log(Function):
    op_name = "log"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Cast(Function):
    op_name = "cast"

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.in_dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.in_dtype)


class PowTensor(Function):
    """a ** b for a tensor exponent b (broadcasting)."""
    op_name = "pow"

    @staticmethod
    def forward(ctx, a, b):
        y = np.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        da = db = None
        if ctx.needs_input_grad[0]:
            # 1. d(a^b)/da = b a^(b-1)  (b == 0: 0, not 0 * 0^-1)
            with np.errstate(divide="ignore", invalid="ignore"):
                da = grad * np.where(b == 0, 0, b * np.power(a, b - 1))
        if ctx.needs_input_grad[1]:
            # 2. d(a^b)/db = a^b log a ; at a == 0 with b >= 0 the limit is 0 (as torch);
            #    a < 0 has no real log: nan, as torch
            with np.errstate(divide="ignore", invalid="ignore"):
                db = grad * np.where((a == 0) & (b >= 0), 0, y * np.log(a))
        return da, db


class Abs(Function):
    op_name = "abs"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        # d|x|/dx = sign(x), taken as 0 at x == 0 (as torch)
        return grad * np.sign(a)


class Sqrt(Function):
    op_name = "sqrt"

    @staticmethod
    def forward(ctx, a):
        y = np.sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # y = sqrt(x)  =>  dx = grad / (2 y)
        with np.errstate(divide="ignore"):
            return grad / (2 * y)


class Clamp(Function):
    """min(max(x, lo), hi); the bounds are numbers or arrays (constants), either may be None."""
    op_name = "clamp"

    @staticmethod
    def forward(ctx, a, lo=None, hi=None):
        if lo is None and hi is None:
            raise ValueError(f"clamp: give min, max or both (input shape {a.shape})")
        inside = np.ones((), dtype=bool)
        if lo is not None:
            inside = inside & (a >= lo)
        if hi is not None:
            inside = inside & (a <= hi)
        out = np.asarray(np.clip(a, lo, hi), dtype=a.dtype)
        ctx.save_for_backward(np.broadcast_to(inside, out.shape))
        return out

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        # 1. inside [lo, hi] (bounds included, as torch) the output is x: gradient 1
        # 2. outside it is a constant bound: gradient 0
        return grad * inside
