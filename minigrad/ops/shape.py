"""Shape primitives: reshape, transpose, indexing, concat, stack, split, expand, repeat."""
from __future__ import annotations

import numpy as np

from minigrad.engine import unbroadcast
from minigrad.function import Function
from minigrad.ops.aliases import axis_aliases


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


def _pieces(a: np.ndarray, sizes, axis: int) -> tuple:
    """Consecutive slices of ``a`` along ``axis`` with the given sizes, as views (np.split
    without its Python-level bookkeeping)."""
    index = [slice(None)] * a.ndim
    pieces, start = [], 0
    for n in sizes:
        index[axis] = slice(start, start + n)
        pieces.append(a[tuple(index)])
        start += n
    return tuple(pieces)


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
        # each input's gradient is its slice of grad along the axis
        return (None, *_pieces(grad, ctx.sizes, ctx.axis))


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
        return _pieces(a, sizes, axis)  # views: each output Tensor makes its own copy

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


@axis_aliases
def concat(tensors, axis: int = 0):
    """Join tensors along an existing axis (``torch.cat``; ``dim=`` or ``axis=``)."""
    return Concat.apply(axis, *tensors)


cat = concat


@axis_aliases
def stack(tensors, axis: int = 0):
    """Join tensors along a new axis (``torch.stack``; ``dim=`` or ``axis=``)."""
    return Stack.apply(axis, *tensors)


@axis_aliases
def split(tensor, split_size_or_sections, axis: int = 0):
    """Split into equal chunks of ``split_size`` (the last may be smaller) or into the listed
    sizes (``torch.split``; ``dim=`` or ``axis=``); returns a tuple of tensors."""
    n = tensor.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step} "
                             f"(shape {tensor.shape})")
        sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
    out = Split.apply(tensor, sizes=tuple(sizes), axis=axis)
    return out if isinstance(out, tuple) else (out,)


@axis_aliases
def chunk(tensor, chunks: int, axis: int = 0):
    """Split into ``chunks`` pieces of ceil(size / chunks) along the axis, the last smaller
    (``torch.chunk``: fewer pieces when the size does not allow that many)."""
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    n = tensor.shape[axis]
    return split(tensor, max(-(-n // int(chunks)), 1), axis=axis)


class Expand(Function):
    """Broadcast ``a`` to ``shape`` (size-1 axes stretched, new leading axes added); -1 keeps
    an axis (``torch.expand``). Backward sums the stretched axes back."""
    op_name = "expand"

    @staticmethod
    def forward(ctx, a, shape):
        shape = tuple(int(n) for n in shape)
        lead = len(shape) - a.ndim
        if lead < 0 or any(n == -1 and i < lead for i, n in enumerate(shape)):
            raise ValueError(f"expand: cannot expand shape {a.shape} to {shape}")
        target = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        try:
            out = np.broadcast_to(a, target)
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {a.shape} to {shape} (only size-1 "
                             f"axes stretch)") from None
        ctx.in_shape = a.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.in_shape)


class Repeat(Function):
    """Tile ``a`` ``reps[i]`` times along each axis (``torch.Tensor.repeat``; more reps than
    axes add leading axes)."""
    op_name = "repeat"

    @staticmethod
    def forward(ctx, a, reps):
        reps = tuple(int(r) for r in reps)
        if len(reps) < a.ndim or any(r < 0 for r in reps):
            raise ValueError(f"repeat: needs at least {a.ndim} non-negative repeat counts for "
                             f"shape {a.shape}, got {reps}")
        src = a.reshape((1,) * (len(reps) - a.ndim) + a.shape)
        ctx.src_shape, ctx.in_shape, ctx.reps = src.shape, a.shape, reps
        return np.tile(src, reps)

    @staticmethod
    def backward(ctx, grad):
        # 1. split every axis i into (reps[i], size[i]); 2. sum the copies (the reps axes)
        split = [n for pair in zip(ctx.reps, ctx.src_shape) for n in pair]
        g = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return g.reshape(ctx.in_shape)
