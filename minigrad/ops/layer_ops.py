"""Primitives behind the tutorial-level functions: layer normalisation, the GELU activation,
the p-norm along an axis (for ``normalize``), constant padding, and the negative log-likelihood
loss on log-probabilities (classes LAST, as ``cross_entropy``).

Each is one ``Function`` whose ``backward`` holds its local-gradient rule in numpy.
"""
from __future__ import annotations

import math

import numpy as np

from minigrad.fast import kernels
from minigrad.function import Function
from minigrad.ops.loss import _check_reduction, _grad_per_element, _reduce, check_class_targets
from minigrad.ops.reduce import mean_array


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing ``normalized_ndim``
    axes (biased variance, as PyTorch). ``weight`` and ``bias`` are None or shaped like those
    trailing axes."""
    op_name = "layer_norm"

    # The arithmetic goes through kernels.sub / mul / add (numpy's - * +, compiled for these
    # per-row columns and weight rows) and means through mean_array: numpy's bits, less of
    # numpy's per-call machinery, which dominates at a batch of a few dozen rows.
    @staticmethod
    def forward(ctx, x, weight, bias, normalized_ndim=1, eps=1e-5):
        axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
        mu = mean_array(x, axes, True)
        centred = kernels.sub(x, mu)                                  # x - mu
        var = mean_array(kernels.mul(centred, centred), axes, True)
        rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        xhat = kernels.mul(centred, rstd)                             # (x - mu) / std
        y = xhat if weight is None else kernels.mul(xhat, weight)
        if bias is not None:
            y = kernels.add(y, bias)
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.axes, ctx.lead = axes, tuple(range(x.ndim - normalized_ndim))
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved_tensors
        axes, lead = ctx.axes, ctx.lead
        # 1. d y / d xhat = weight (or 1)
        g = grad if weight is None else kernels.mul(grad, weight)
        # 2. xhat = (x - mu) * rstd, with mu and rstd functions of x along the normalised axes:
        #    dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
        dx = None
        if ctx.needs_input_grad[0]:
            inner = kernels.sub(kernels.sub(g, mean_array(g, axes, True)),
                                kernels.mul(xhat, mean_array(kernels.mul(g, xhat), axes, True)))
            dx = kernels.mul(rstd, inner)
        # 3. d y / d weight = xhat, d y / d bias = 1, summed over the leading (batch) axes
        dw = np.add.reduce(kernels.mul(grad, xhat), axis=lead) if ctx.needs_input_grad[1] \
            else None
        db = grad.sum(axis=lead) if ctx.needs_input_grad[2] else None
        return dx, dw, db


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


class GELU(Function):
    """x * Phi(x), Phi the standard normal CDF ('none'), or PyTorch's tanh approximation
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ('tanh')."""
    op_name = "gelu"

    @staticmethod
    def forward(ctx, x, approximate="none"):
        if approximate == "none":
            from scipy.special import erf
            cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
            ctx.save_for_backward(x, cdf)
            y = x * cdf
        elif approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x ** 3))
            ctx.save_for_backward(x, t)
            y = 0.5 * x * (1.0 + t)
        else:
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        ctx.approximate = approximate
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        if ctx.approximate == "none":
            # 1. d/dx [x Phi(x)] = Phi(x) + x phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
            pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
            return grad * (s + x * pdf)
        # 2. u = sqrt(2/pi) (x + c x^3), t = tanh(u):
        #    dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 c x^2)
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * x * x)
        return grad * (0.5 * (1.0 + s) + 0.5 * x * (1.0 - s * s) * du)


class LpNorm(Function):
    """n = (sum |x|^p)^(1/p) along ``axis`` (kept as a size-1 axis), p > 0 finite.

    The gradient of a zero-norm slice is zero (as PyTorch's norm)."""
    op_name = "lp_norm"

    @staticmethod
    def forward(ctx, x, p=2.0, axis=-1):
        if not (p > 0 and math.isfinite(p)):
            raise ValueError(f"lp_norm: p must be a positive finite number, got {p} "
                             f"(input shape {x.shape})")
        ax = np.abs(x)
        n = (ax ** p).sum(axis=axis, keepdims=True) ** (1.0 / p)
        ctx.save_for_backward(x, n)
        ctx.p = p
        return n.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, n = ctx.saved_tensors
        p = ctx.p
        # 1. dn/dx = sign(x) |x|^(p-1) / n^(p-1)   (p = 2: x / n); 0 where n = 0
        safe = np.where(n > 0, n, 1)
        ax = np.abs(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            local = np.sign(x) * np.where(ax > 0, ax ** (p - 1), 0) / safe ** (p - 1)
        local = np.where(n > 0, local, 0)
        return (grad * local).astype(x.dtype, copy=False)


class ConstantPad(Function):
    """Pad (or crop, for negative widths) with a constant. ``widths`` is one (before, after)
    pair per axis, first axis first."""
    op_name = "pad"

    @staticmethod
    def forward(ctx, x, widths=(), value=0.0):
        new_shape, src, dst = [], [], []
        for size, (lo, hi) in zip(x.shape, widths):
            new = size + lo + hi
            if new < 0:
                raise ValueError(f"pad: widths ({lo}, {hi}) leave a negative size for an axis "
                                 f"of {size} (input shape {x.shape})")
            new_shape.append(new)
            # source range kept from x, and where it lands in the output
            s0, s1 = max(0, -lo), size - max(0, -hi)
            d0 = max(0, lo)
            src.append(slice(s0, max(s0, s1)))
            dst.append(slice(d0, d0 + max(0, s1 - s0)))
        out = np.full(new_shape, value, dtype=x.dtype)
        out[tuple(dst)] = x[tuple(src)]
        ctx.src, ctx.dst, ctx.in_shape = tuple(src), tuple(dst), x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        # 1. each kept input element was copied to one output place: its gradient is the
        #    gradient there; cropped elements get zero, padding takes no input
        dx = np.zeros(ctx.in_shape, dtype=grad.dtype)
        dx[ctx.src] = grad[ctx.dst]
        return dx


class NLLLoss(Function):
    """Negative log-likelihood: l = -w[target] * input[..., target] for log-probabilities
    (..., C) (classes LAST) and integer targets (...), with per-class weights w (None: all 1).
    'mean' divides the sum by the total weight of the targets that are not ``ignore_index``
    (nan when that is zero, as PyTorch); the weights get no gradient."""
    op_name = "nll_loss"

    @staticmethod
    def forward(ctx, x, target, weight=None, ignore_index=-100, reduction="mean"):
        _check_reduction("nll_loss", reduction)
        t = check_class_targets("nll_loss", "input", x, target, ignore_index)
        target = np.asarray(target)
        n_classes = x.shape[-1]
        if weight is not None and np.shape(weight) != (n_classes,):
            raise ValueError(f"nll_loss: weight must hold one number per class, shape "
                             f"({n_classes},), got {np.shape(weight)}")
        kept = t != ignore_index
        rows = x.reshape(-1, n_classes)
        safe_t = np.where(kept, t, 0)
        # 1. each row's weight: w[target] (1 without weights), 0 for an ignored row
        w_rows = np.ones(t.shape, dtype=x.dtype) if weight is None \
            else np.asarray(weight, dtype=x.dtype)[safe_t]
        w_rows = np.where(kept, w_rows, 0).astype(x.dtype)
        losses = (-rows[np.arange(rows.shape[0]), safe_t] * w_rows).reshape(target.shape)
        total = float(w_rows.sum(dtype=np.float64))
        ctx.save_for_backward(safe_t, w_rows)
        ctx.shape, ctx.total, ctx.reduction = x.shape, total, reduction
        if reduction == "mean":
            mean = losses.sum(dtype=np.float64) / total if total else np.nan
            return np.asarray(mean, dtype=x.dtype)
        return _reduce(losses, reduction, 1)

    @staticmethod
    def backward(ctx, grad):
        safe_t, w_rows = ctx.saved_tensors
        # 2. d loss / d (row loss): 1 / total weight ('mean'), 1 ('sum'), grad ('none')
        if ctx.reduction == "mean":
            g_rows = np.broadcast_to(grad / ctx.total if ctx.total else 0 * grad, safe_t.shape)
        else:
            g_rows = _grad_per_element(grad, ctx.shape[:-1], ctx.reduction, 1).reshape(-1)
        # 3. d (row loss) / d input[row, c] = -w[target] [c == target]  (0 for ignored rows)
        dx = np.zeros((safe_t.size, ctx.shape[-1]), dtype=grad.dtype)
        dx[np.arange(safe_t.size), safe_t] = -g_rows * w_rows
        return dx.reshape(ctx.shape), None, None
