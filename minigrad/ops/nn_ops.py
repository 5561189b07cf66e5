"""Neural-network primitives: where (masking), dropout, embedding lookup, and an embedding table
projected by a matrix (what a fused recurrent layer reading an Embedding looks its input up in).

Embedding's backward is the compiled scatter-add kernel ``kernels.embedding_backward``.
"""
from __future__ import annotations

import numpy as np

from minigrad import kernels
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


class ProjectedTable(Function):
    """table (V, P) = weight (V, dim) @ proj (P, dim)^T: every row of an embedding table through
    the linear map proj, once. A fused recurrent layer reading an Embedding looks its input
    projection up in this table (token ids into the kernels, see minigrad.nn.rnn) instead of
    multiplying every token's vector by W_ih: V*dim*P multiply-adds instead of N*dim*P for N
    tokens (V = 65, N = 2048 in a char model), and no dX product in backward.

      (1) table = weight proj^T
      (2) dweight = dtable proj     (the padding_idx row gets none, as in Embedding)
      (3) dproj = dtable^T weight   (every row counts, the padding row included)

    That is a bias-free Linear layer applied to the table's rows, so the products are the
    Linear kernels (``kernels.linear_forward`` / ``linear_backward``)."""
    op_name = "projected_table"

    @staticmethod
    def forward(ctx, weight, proj, padding_idx=None):
        if weight.ndim != 2 or proj.ndim != 2 or proj.shape[1] != weight.shape[1] or \
                proj.dtype != weight.dtype:
            raise ValueError(f"projected_table: weight (V, dim) and proj (P, dim) must share dim "
                             f"and dtype; got weight {weight.shape} {weight.dtype}, proj "
                             f"{proj.shape} {proj.dtype}")
        weight, proj = np.ascontiguousarray(weight), np.ascontiguousarray(proj)
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


def embedding_source(t) -> tuple | None:
    """(indices shaped like t without its last axis, weight Tensor, padding_idx) when Tensor t
    is the output of an embedding lookup that backward will go through (grad recorded, no hooks
    or retain_grad on t), else None. Lets a consumer read the table instead of t."""
    ctx = t._ctx
    if ctx is None or ctx.fn is not Embedding or ctx.output_hooks or ctx._freed:
        return None
    return ctx.indices.reshape(t.shape[:-1]), ctx.parents[1], ctx.padding_idx
