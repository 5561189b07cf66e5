"""Shape primitives: reshape, transpose, indexing, concat, stack, split."""
from __future__ import annotations

import numpy as np

from minigrad.function import Function


class Reshape(Function):
    op_name = "reshape"

    @staticmethod
    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {a.shape} ({a.size} elements) "
                             f"into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


class Transpose(Function):
    op_name = "transpose"

    @staticmethod
    def forward(ctx, a, axes):
        axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(axes)
        if sorted(ax % max(a.ndim, 1) for ax in axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the "
                             f"{a.ndim} axes of shape {a.shape}")
        ctx.axes = tuple(ax % a.ndim for ax in axes) if a.ndim else axes
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, grad):
        # the inverse permutation (axes normalised to be non-negative, else argsort is wrong)
        return np.transpose(grad, np.argsort(ctx.axes))


class GetItem(Function):
    """x[index] for slices, integers, integer arrays and boolean masks.

    Backward scatter-adds into zeros, so repeated integer indices accumulate."""
    op_name = "getitem"

    @staticmethod
    def forward(ctx, a, index):
        ctx.in_shape, ctx.in_dtype, ctx.index = a.shape, a.dtype, index
        try:
            return np.array(a[index])
        except IndexError as exc:
            raise IndexError(f"getitem: index {index!r} invalid for shape {a.shape}: "
                             f"{exc}") from None

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.in_shape, dtype=ctx.in_dtype)
        if _is_basic(ctx.index):
            full[ctx.index] = grad          # a view: every input element is picked at most once
        else:
            np.add.at(full, ctx.index, grad)  # integer arrays may repeat: scatter-add
        return full


def _is_basic(index) -> bool:
    """True for numpy basic indexing (ints, slices, None, Ellipsis), which never repeats."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               and not isinstance(p, (bool, np.bool_)) for p in parts)


class Concat(Function):
    op_name = "concat"

    @staticmethod
    def forward(ctx, axis, *arrays):
        _check_same_rank("concat", arrays, axis, same_shape=False)
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        cuts = np.cumsum(ctx.sizes)[:-1]
        return (None, *np.split(grad, cuts, axis=ctx.axis))


class Stack(Function):
    op_name = "stack"

    @staticmethod
    def forward(ctx, axis, *arrays):
        _check_same_rank("stack", arrays, axis, same_shape=True)
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        n = grad.shape[ctx.axis]
        return (None, *(np.take(grad, i, axis=ctx.axis) for i in range(n)))


class Split(Function):
    """Split along ``axis`` into pieces of the given sizes (one output per piece)."""
    op_name = "split"

    @staticmethod
    def forward(ctx, a, sizes, axis):
        if sum(sizes) != a.shape[axis] or any(n < 0 for n in sizes):
            raise ValueError(f"split: sizes {list(sizes)} do not add up to {a.shape[axis]}, "
                             f"the size of axis {axis} of shape {a.shape}")
        ctx.axis = axis
        return tuple(np.split(a, np.cumsum(sizes)[:-1], axis=axis))

    @staticmethod
    def backward(ctx, *grads):
        return np.concatenate(grads, axis=ctx.axis)


def _check_same_rank(op, arrays, axis, same_shape):
    if not arrays:
        raise ValueError(f"{op}: needs at least one tensor")
    first = arrays[0].shape
    for a in arrays[1:]:
        if same_shape and a.shape != first:
            raise ValueError(f"{op}: all tensors must have the same shape, got "
                             f"{[x.shape for x in arrays]}")
        if not same_shape and (a.ndim != len(first) or any(
                n != m for i, (n, m) in enumerate(zip(a.shape, first))
                if i != axis % len(first))):
            raise ValueError(f"{op}: shapes {[x.shape for x in arrays]} differ outside "
                             f"axis {axis}")


def concat(tensors, axis: int = 0):
    """Join tensors along an existing axis (``torch.cat``)."""
    return Concat.apply(axis, *tensors)


def stack(tensors, axis: int = 0):
    """Join tensors along a new axis (``torch.stack``)."""
    return Stack.apply(axis, *tensors)


def split(tensor, split_size_or_sections, axis: int = 0):
    """Split into equal chunks of ``split_size`` or into the listed sizes (``torch.split``)."""
    n = tensor.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        sizes = [min(step, n - i) for i in range(0, n, step)]
    else:
        sizes = list(split_size_or_sections)
    out = Split.apply(tensor, sizes=tuple(sizes), axis=axis)
    return out if isinstance(out, tuple) else (out,)
