"""Matrix products: 2-D and batched (numpy matmul semantics, batch dims broadcast).

An N-D operand times a 2-D one (the Linear head on (B, T, H) activations) folds the leading
dimensions into the rows of one 2-D GEMM, forward and backward, instead of a batch of small
products followed by a sum over the batch axis."""
from __future__ import annotations

import math

import numpy as np

from minigrad.fast import kernels
from minigrad.engine import unbroadcast
from minigrad.function import Function


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` (..., K) as a (prod(...), K) matrix (a view when the layout allows)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _batched_product(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x @ y`` for (..., P, K) and (..., K, Q) with the same batch dims. With K == 1 (the
    backward of a matrix-vector product) each entry is one product x[p] * y[q]: einsum gives
    the same numbers as the broadcast ``x * y``, faster (benchmarks/RESULTS.md, session 7), and
    avoids numpy's slow stacked matmul for a contraction of one."""
    if x.shape[-1] == 1:
        return np.einsum("...pk,...kq->...pq", x, y)
    return x @ y


class MatMul(Function):
    op_name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                             f"{a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                             f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})")
        ctx.save_for_backward(a, b)
        if a.ndim > 2 and b.ndim == 2:
            # (..., M, K) @ (K, N): one (prod(...) M, K) @ (K, N) GEMM
            return (_rows(a) @ b).reshape(a.shape[:-1] + (b.shape[1],))
        try:
            return a @ b
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} "
                             f"do not broadcast") from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        da = db = None
        if a.ndim >= 2 and b.ndim == 2:
            # 1. fold the leading dims of A and dC into rows: A_f (R, K), G_f (R, N)
            # 2. C = A B  =>  dA = dC B^T ,  dB = A_f^T G_f  (the batch sum inside the GEMM)
            g = _rows(grad)
            if ctx.needs_input_grad[0]:
                da = (g @ b.T).reshape(a.shape)
            if ctx.needs_input_grad[1]:
                db = _rows(a).T @ g
            return da, db
        if a.ndim == 2 and b.ndim > 2:
            # 1. dB = A^T dC per batch (a batched product, no sum); dA = sum_batch dC B^T is
            #    one GEMM contracting the batch dims together with N
            lead = tuple(range(b.ndim - 2))
            if ctx.needs_input_grad[0]:
                da = np.tensordot(grad, b, axes=(lead + (b.ndim - 1,), lead + (b.ndim - 1,)))
            if ctx.needs_input_grad[1]:
                db = a.T @ grad
            return da, db
        if a.ndim == b.ndim > 2 and a.shape[:-2] == b.shape[:-2]:
            # the same batch dims, nothing broadcast: dA = dC B^T , dB = A^T dC per batch
            if ctx.needs_input_grad[0]:
                da = _batched_product(grad, np.swapaxes(b, -1, -2))
            if ctx.needs_input_grad[1]:
                db = _batched_product(np.swapaxes(a, -1, -2), grad)
            return da, db
        # 1. promote 1-D operands to matrices (a row, a column) so one rule serves every case
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        # 2. C = A B  =>  dA = dC B^T ,  dB = A^T dC
        # 3. sum broadcast batch dims back to each operand's shape, undo the promotion
        if ctx.needs_input_grad[0]:
            da = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            db = unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return da, db


class Linear(Function):
    """y = x W^T + b for x (..., in), W (out, in), b (out,) or None: one node, one GEMM over
    the rows of x with its leading dimensions folded. When x, W and b share a float dtype the
    products are kernels.linear_forward / linear_backward (split across the kernel workers);
    mixed dtypes take numpy's promotion."""
    op_name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        ctx.one_dtype = _one_float_dtype(x, weight, bias)
        out_shape = x.shape[:-1] + (weight.shape[0],)
        if ctx.one_dtype:
            out = kernels.linear_forward(_contiguous_rows(x), np.ascontiguousarray(weight),
                                         None if bias is None else np.ascontiguousarray(bias))
            return out.reshape(out_shape)
        out = _rows(x) @ weight.T
        if bias is not None:
            out = out + bias
        return out.reshape(out_shape)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        need_db = ctx.has_bias and needs[2]
        # 1. fold the leading dims into rows: X_f (R, in), G_f (R, out)
        # 2. y = X W^T + b  =>  dX = G W ,  dW = G_f^T X_f ,  db = sum over rows of G_f
        if ctx.one_dtype:
            dx, dw, db = kernels.linear_backward(
                _contiguous_rows(grad), _contiguous_rows(x), np.ascontiguousarray(weight),
                (needs[0], needs[1], need_db))
            return (None if dx is None else dx.reshape(x.shape)), dw, db
        g = _rows(grad)
        dx = (g @ weight).reshape(x.shape) if needs[0] else None
        dw = g.T @ _rows(x) if needs[1] else None
        db = g.sum(axis=0) if need_db else None
        return dx, dw, db


def _one_float_dtype(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> bool:
    dtypes = {x.dtype, weight.dtype} | ({bias.dtype} if bias is not None else set())
    return len(dtypes) == 1 and x.dtype in (np.float32, np.float64) and weight.ndim == 2 \
        and x.ndim >= 1 and (bias is None or bias.ndim == 1)


def _contiguous_rows(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_rows(a))


def matmul(a, b):
    """Matrix product with numpy's rules (``torch.matmul``): 1-D operands are promoted, batch
    dimensions broadcast; the same as ``a @ b``."""
    return MatMul.apply(a, b)


def mm(a, b):
    """Product of two matrices, (N, M) @ (M, P) (``torch.mm``: no broadcasting)."""
    if np.ndim(a) != 2 or np.ndim(b) != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"mm: needs (N, M) and (M, P) matrices, got shapes {np.shape(a)} and "
                         f"{np.shape(b)}")
    return MatMul.apply(a, b)


def bmm(a, b):
    """Batched matrix product of (B, N, M) and (B, M, P) tensors (``torch.bmm``)."""
    if np.ndim(a) != 3 or np.ndim(b) != 3 or a.shape[0] != b.shape[0] or \
            a.shape[2] != b.shape[1]:
        raise ValueError(f"bmm: needs (B, N, M) and (B, M, P) tensors, got shapes "
                         f"{np.shape(a)} and {np.shape(b)}")
    return MatMul.apply(a, b)
