"""Neural-network primitives: where (masking), dropout, embedding lookup; and the argument check
of sequence lengths shared by the recurrent layers and the fused sequence Functions.

Embedding's backward is the compiled scatter-add kernel ``kernels.embedding_backward``.
"""
from __future__ import annotations

import numpy as np

from minigrad.fast import kernels
from minigrad.function import Function


class Where(Function):
    """out = a where cond else b (numpy broadcasting); cond gets no gradient."""
    op_name = "where"

    @staticmethod
    def forward(ctx, cond, a, b):
        if not isinstance(cond, np.ndarray):  # a Python bool would select one side everywhere
            raise TypeError(f"where: condition must be a boolean Tensor or ndarray, got "
                            f"{type(cond).__name__}")
        if cond.dtype != np.bool_:
            raise ValueError(f"where: cond must be a boolean mask, got dtype {cond.dtype} "
                             f"with shape {cond.shape}")
        try:
            out = np.where(cond, a, b)
        except ValueError:
            raise ValueError(f"where: shapes cond {cond.shape}, a {np.shape(a)}, "
                             f"b {np.shape(b)} do not broadcast") from None
        ctx.save_for_backward(cond)
        return out

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        # 1. d out / d a = [cond] ; d out / d b = [not cond]  (engine sums broadcast axes)
        zero = np.zeros((), dtype=grad.dtype)
        da = np.where(cond, grad, zero) if ctx.needs_input_grad[1] else None
        db = np.where(cond, zero, grad) if ctx.needs_input_grad[2] else None
        return None, da, db


class Dropout(Function):
    """Zero each element with probability p and scale survivors by 1 / (1 - p)."""
    op_name = "dropout"

    @staticmethod
    def forward(ctx, a, p, rng):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout: p must be in [0, 1], got {p} (input shape {a.shape})")
        if p == 1.0:
            scale = np.zeros(a.shape, dtype=a.dtype)
        else:
            keep = rng.random(a.shape) >= p
            scale = keep.astype(a.dtype) * a.dtype.type(1.0 / (1.0 - p))
        ctx.save_for_backward(scale)
        return a * scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        # y = x * scale  =>  dx = grad * scale
        return grad * scale, None, None


class Embedding(Function):
    """out[..., :] = weight[indices[...], :]; backward scatter-adds rows (repeats accumulate).

    Rows whose index equals ``padding_idx`` get no gradient."""
    op_name = "embedding"

    @staticmethod
    def forward(ctx, indices, weight, padding_idx=None):
        indices = _check_lookup("embedding", indices, weight)
        num = weight.shape[0]
        ctx.indices = indices.astype(np.int64, copy=False).reshape(-1)
        ctx.num, ctx.padding_idx = num, padding_idx
        return np.take(weight, indices, axis=0)  # weight[indices], without fancy indexing

    @staticmethod
    def backward(ctx, grad):
        if not ctx.needs_input_grad[1]:
            return None, None
        dim = grad.shape[-1]
        g = np.ascontiguousarray(grad.reshape(-1, dim))
        dweight = kernels.embedding_backward(np.ascontiguousarray(ctx.indices), g, ctx.num)
        if ctx.padding_idx is not None:
            dweight[ctx.padding_idx] = 0
        return None, dweight


def check_lengths(op: str, lengths, steps: int, batch: int) -> np.ndarray | None:
    """Sequence lengths for a recurrent layer over ``steps`` time steps and ``batch`` rows: one
    integer per row in [0, steps], returned as a contiguous int64 vector (None stays None)."""
    if lengths is None:
        return None
    arr = np.asarray(getattr(lengths, "data", lengths))
    if arr.ndim != 1 or arr.shape[0] != batch:
        raise ValueError(f"{op}: lengths must hold one int per batch row ({batch}), "
                         f"got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: lengths must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > steps):
        raise ValueError(f"{op}: lengths must lie in [0, {steps}] (the sequence length), "
                         f"got {arr.tolist()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_lookup(op: str, indices, weight: np.ndarray) -> np.ndarray:
    """Integer indices within weight's rows, for a lookup into weight (V, dim)."""
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise ValueError(f"{op}: indices must be integers, got dtype {indices.dtype} "
                         f"with shape {indices.shape}")
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, dim), got shape "
                         f"{weight.shape}")
    num = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= num):
        bad = indices[(indices < 0) | (indices >= num)].flat[0]
        raise ValueError(f"{op}: index {int(bad)} is out of range for weight of shape "
                         f"{weight.shape} (indices shape {indices.shape})")
    return indices
