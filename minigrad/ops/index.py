"""Index primitives with PyTorch's semantics: gather, index_select, masked_fill.

Backward of gather and index_select scatter-adds into zeros (``np.add.at``), so an index
that repeats accumulates its gradients."""
from __future__ import annotations

import numpy as np

from minigrad.function import Function
from minigrad.ops.select import _check_axis


def _int_index(op: str, index, a: np.ndarray, axis: int) -> np.ndarray:
    index = np.asarray(index)
    if index.dtype.kind not in "iu":
        raise ValueError(f"{op}: index must hold integers, got dtype {index.dtype} with shape "
                         f"{index.shape}")
    n = a.shape[axis]
    if index.size and (index.min() < -n or index.max() >= n):
        bad = index[(index < -n) | (index >= n)].flat[0]
        raise ValueError(f"{op}: index {int(bad)} is out of range for dim {axis} of size {n} "
                         f"(input shape {a.shape})")
    return index.astype(np.int64, copy=False) % max(n, 1)


class Gather(Function):
    """out[i][j][k] = a[index[i][j][k]][j][k] for dim 0 (likewise for any dim), as
    ``torch.gather``: index has a's rank and is no larger than a outside dim."""
    op_name = "gather"

    @staticmethod
    def forward(ctx, a, index, axis):
        axis = _check_axis("gather", a, axis)
        index = np.asarray(index)
        if index.ndim != a.ndim or any(i > n for d, (i, n) in enumerate(zip(index.shape, a.shape))
                                       if d != axis):
            raise ValueError(f"gather: index of shape {index.shape} must have the input's rank "
                             f"and be no larger outside dim {axis} (input shape {a.shape})")
        index = _int_index("gather", index, a, axis)
        # 1. the positions read: index along axis, the output's own coordinate elsewhere
        grid = list(np.indices(index.shape, sparse=True))
        grid[axis] = index
        ctx.where, ctx.in_shape = tuple(grid), a.shape
        return a[ctx.where]

    @staticmethod
    def backward(ctx, grad):
        # 2. each output element came from one input position: scatter-add the gradient there
        full = np.zeros(ctx.in_shape, dtype=grad.dtype)
        np.add.at(full, ctx.where, grad)
        return full, None


class IndexSelect(Function):
    """The slices of ``a`` at the positions ``index`` (1-D) along ``axis``
    (``torch.index_select``)."""
    op_name = "index_select"

    @staticmethod
    def forward(ctx, a, index, axis):
        axis = _check_axis("index_select", a, axis)
        index = np.asarray(index)
        if index.ndim > 1:
            raise ValueError(f"index_select: index must be 0-D or 1-D, got shape {index.shape}")
        index = _int_index("index_select", index.reshape(-1), a, axis)
        ctx.index, ctx.axis, ctx.in_shape = index, axis, a.shape
        return np.take(a, index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.in_shape, dtype=grad.dtype)
        # move the selected axis first so add.at scatters whole slices, repeats accumulating
        np.add.at(np.moveaxis(full, ctx.axis, 0), ctx.index, np.moveaxis(grad, ctx.axis, 0))
        return full, None


class MaskedFill(Function):
    """``a`` with ``value`` wherever the boolean ``mask`` (broadcast to a's shape) is True."""
    op_name = "masked_fill"

    @staticmethod
    def forward(ctx, a, mask, value):
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"masked_fill: mask must be boolean, got dtype {mask.dtype} with "
                             f"shape {mask.shape}")
        try:
            mask = np.broadcast_to(mask, a.shape)
        except ValueError:
            raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to "
                             f"the input's shape {a.shape}") from None
        ctx.save_for_backward(mask)
        return np.where(mask, np.asarray(value, dtype=a.dtype), a)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        # filled positions are constants: no gradient there
        return np.where(mask, np.zeros((), grad.dtype), grad), None, None
