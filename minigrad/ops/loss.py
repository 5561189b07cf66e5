"""Loss primitives, each one fused, numerically stable graph node: softmax cross-entropy
(compiled kernels ``kernels.softmax_xent_*``), mean squared error, and binary cross-entropy
with logits."""
from __future__ import annotations

import numpy as np

from minigrad.fast import kernels
from minigrad.function import Function
from minigrad.ops.stable import stable_sigmoid

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(values: np.ndarray, reduction: str, count: int) -> np.ndarray:
    if reduction == "none":
        return values
    total = values.sum(dtype=np.float64)
    if reduction == "mean":
        total = total / count if count else np.nan
    return np.asarray(total, dtype=values.dtype)


def check_class_targets(op: str, what: str, x: np.ndarray, target, ignore_index: int
                        ) -> np.ndarray:
    """The targets of a classification loss over x (..., C), checked and flattened to a
    contiguous int64 vector: integer class indices shaped x.shape[:-1], each in [0, C) unless
    it is ``ignore_index``. ``what`` names x in the messages ('logits', 'input')."""
    target = np.asarray(target)
    if x.ndim < 1 or x.dtype.kind != "f":
        raise ValueError(f"{op}: {what} must be a float tensor shaped (..., C), got {x.dtype} "
                         f"with shape {x.shape}")
    if target.dtype.kind not in "iu":
        raise ValueError(f"{op}: target must hold integer class indices, got dtype "
                         f"{target.dtype} (shape {target.shape}); for probabilities or 0/1 "
                         f"labels use binary_cross_entropy_with_logits")
    if target.shape != x.shape[:-1]:
        raise ValueError(f"{op}: target shape {target.shape} must equal the {what} shape "
                         f"without its last (class) axis, {what} {x.shape} -> {x.shape[:-1]}")
    n_classes = x.shape[-1]
    flat_t = np.ascontiguousarray(target.reshape(-1), dtype=np.int64)
    # the min / max test is cheap; the mask that finds the culprit only runs when it fails
    if flat_t.size and (flat_t.min() < 0 or flat_t.max() >= n_classes):
        bad = (flat_t != ignore_index) & ((flat_t < 0) | (flat_t >= n_classes))
        if bad.any():
            raise ValueError(f"{op}: target value {int(flat_t[bad][0])} is out of range for "
                             f"{n_classes} classes ({what} {x.shape}, target {target.shape}, "
                             f"ignore_index={ignore_index})")
    return flat_t


def _grad_per_element(grad: np.ndarray, shape, reduction: str, count: int) -> np.ndarray:
    """d loss / d (per-element loss) for each reduction, broadcast to ``shape``."""
    if reduction == "none":
        return grad
    scale = grad / count if (reduction == "mean" and count) else grad
    if reduction == "mean" and not count:
        scale = np.zeros_like(grad)
    return np.broadcast_to(scale, shape)


class CrossEntropy(Function):
    """Softmax cross-entropy over the LAST axis: logits (..., C), integer target (...).

    loss = logsumexp(x) - x[target] per row; 'mean' averages over rows whose target is not
    ``ignore_index`` (nan when all are ignored, as PyTorch); ignored rows contribute 0 and get
    zero gradient."""
    op_name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, target, ignore_index=-100, reduction="mean"):
        _check_reduction("cross_entropy", reduction)
        flat_t = check_class_targets("cross_entropy", "logits", logits, target, ignore_index)
        target = np.asarray(target)
        n_classes = logits.shape[-1]
        kept = flat_t != ignore_index
        x = np.ascontiguousarray(logits.reshape(-1, n_classes))
        loss_rows, probs = kernels.softmax_xent_forward(x, flat_t, int(ignore_index))
        count = int(np.count_nonzero(kept))
        ctx.save_for_backward(probs, flat_t)
        ctx.count, ctx.ignore_index, ctx.reduction = count, int(ignore_index), reduction
        ctx.shape = logits.shape
        return _reduce(loss_rows.reshape(target.shape), reduction, count)

    @staticmethod
    def backward(ctx, grad):
        probs, flat_t = ctx.saved_tensors
        # 1. d loss / d loss_row: 1/count ('mean'), 1 ('sum'), grad itself ('none')
        if ctx.reduction == "none":
            rows = np.ascontiguousarray(grad.reshape(-1), dtype=probs.dtype)
        else:
            scale = grad if ctx.reduction == "sum" else grad / ctx.count if ctx.count else 0
            rows = np.full(flat_t.shape, scale, dtype=probs.dtype)
        # 2. d loss_row / d logits = probs - onehot(target), scaled by the row's gradient and
        #    zero for ignored rows:
        #        dx = rows[:, None] * (probs - onehot(flat_t))
        #    computed in one pass into a new array by kernels.softmax_xent_backward
        dx = kernels.softmax_xent_backward(probs, flat_t, ctx.ignore_index, rows)
        return dx.reshape(ctx.shape), None


class MSELoss(Function):
    """mean / sum / none of (input - target)^2; the target may broadcast to the input."""
    op_name = "mse_loss"

    @staticmethod
    def forward(ctx, a, target, reduction="mean"):
        _check_reduction("mse_loss", reduction)
        shape = np.shape(target)
        if shape != a.shape:  # a target that broadcasts to the input is fine too
            try:
                shape = np.broadcast_shapes(a.shape, shape)
            except ValueError:
                shape = None
        if shape != a.shape:
            raise ValueError(f"mse_loss: target shape {np.shape(target)} must equal (or "
                             f"broadcast to) the input shape {a.shape}")
        diff = a - target
        ctx.save_for_backward(diff)
        ctx.reduction, ctx.count = reduction, diff.size
        return _reduce(diff * diff, reduction, diff.size)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        # 1. l = d^2 with d = input - target  =>  dl/dinput = 2 d, dl/dtarget = -2 d
        g = _grad_per_element(grad, diff.shape, ctx.reduction, ctx.count) * (2 * diff)
        return (g if ctx.needs_input_grad[0] else None,
                -g if ctx.needs_input_grad[1] else None)


def _softplus_neg(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(-x)) computed without overflow: max(-x, 0) + log1p(exp(-|x|))."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


class BCEWithLogits(Function):
    """Binary cross-entropy on logits x with targets y in [0, 1] and optional pos_weight p:

    l = (1 - y) x + w * softplus(-x),   w = 1 + (p - 1) y   (= -[p y log s(x) + (1-y) log(1-s(x))])
    """
    op_name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, x, y, pos_weight=None, reduction="mean"):
        _check_reduction("binary_cross_entropy_with_logits", reduction)
        y = np.asarray(y)
        if y.shape != x.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: target shape {y.shape} must "
                             f"equal the logits shape {x.shape}")
        y = y.astype(x.dtype, copy=False)
        p = None if pos_weight is None else np.asarray(pos_weight, dtype=x.dtype)
        if p is not None:
            try:
                np.broadcast_shapes(p.shape, x.shape)
            except ValueError:
                raise ValueError(f"binary_cross_entropy_with_logits: pos_weight shape {p.shape} "
                                 f"does not broadcast to logits {x.shape}") from None
        sp = _softplus_neg(x)
        w = 1 if p is None else 1 + (p - 1) * y
        loss = ((1 - y) * x + w * sp).astype(x.dtype, copy=False)
        ctx.save_for_backward(x, y, p, sp)
        ctx.reduction, ctx.count = reduction, loss.size
        return _reduce(loss, reduction, loss.size)

    @staticmethod
    def backward(ctx, grad):
        x, y, p, sp = ctx.saved_tensors
        g = _grad_per_element(grad, x.shape, ctx.reduction, ctx.count)
        w = 1 if p is None else 1 + (p - 1) * y
        # 1. d softplus(-x)/dx = -sigmoid(-x) = sigmoid(x) - 1
        sig = stable_sigmoid(x)
        # 2. dl/dx = (1 - y) + w (sigmoid(x) - 1)
        dx = g * ((1 - y) + w * (sig - 1)) if ctx.needs_input_grad[0] else None
        # 3. dl/dy = -x + (p - 1) softplus(-x)   (w depends on y only through p)
        dy = None
        if ctx.needs_input_grad[1]:
            dy = g * (-x + (0 if p is None else (p - 1) * sp))
        # 4. dl/dp = y softplus(-x)
        dp = g * y * sp if (len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]) else None
        return dx, dy, dp
