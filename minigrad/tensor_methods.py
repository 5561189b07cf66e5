"""The Tensor's math methods (a base class of ``minigrad.Tensor``): activations, reductions,
selections, shape and index methods, each a thin call into one primitive ``Function`` of
``minigrad.ops``.

Every method that takes an axis accepts PyTorch's ``dim=`` and numpy's ``axis=`` as the same
argument, and ``keepdim=`` / ``keepdims=`` likewise (``minigrad.ops.aliases``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.ops import elementwise as ew
from minigrad.ops import index as ix
from minigrad.ops import reduce as rd
from minigrad.ops import select as sel
from minigrad.ops import shape as sh
from minigrad.ops.aliases import axis_aliases
from minigrad.ops.nn_ops import Where


def _sizes(args: tuple) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both give (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, TensorMethods) else x


class TensorMethods:
    """Math methods of ``minigrad.Tensor`` (see that class)."""

    __slots__ = ()

    # Elementwise
    def tanh(self):
        """Hyperbolic tangent, elementwise."""
        return ew.Tanh.apply(self)

    def sigmoid(self):
        """Logistic sigmoid 1 / (1 + exp(-x)), elementwise (stable for large |x|)."""
        return ew.Sigmoid.apply(self)

    def relu(self):
        """max(x, 0), elementwise."""
        return ew.ReLU.apply(self)

    def exp(self):
        """e ** x, elementwise."""
        return ew.Exp.apply(self)

    def log(self):
        """Natural logarithm, elementwise."""
        return ew.Log.apply(self)

    def abs(self):
        """|x|, elementwise (gradient sign(x), 0 at 0)."""
        return ew.Abs.apply(self)

    def sqrt(self):
        """Square root, elementwise."""
        return ew.Sqrt.apply(self)

    def clamp(self, min: float | None = None, max: float | None = None):
        """Limit values to [min, max] (either bound may be None; a tensor bound is a constant);
        the gradient is 1 inside the bounds (bounds included) and 0 outside, as
        ``torch.clamp``."""
        return ew.Clamp.apply(self, lo=_raw(min), hi=_raw(max))

    def clip(self, min: float | None = None, max: float | None = None):
        """The same as ``clamp`` (numpy's and PyTorch's other name)."""
        return self.clamp(min, max)

    def pow(self, exponent: Any):
        """self ** exponent; the exponent is a number or a tensor (broadcasting)."""
        return self ** exponent

    def matmul(self, other: Any):
        """Matrix product ``self @ other`` (numpy's matmul rules, batch dims broadcast)."""
        return self @ other

    def mm(self, other: Any):
        """Product of two matrices, (N, M) @ (M, P) (``torch.mm``)."""
        from minigrad.ops.linalg import mm
        return mm(self, other)

    def bmm(self, other: Any):
        """Batched product of (B, N, M) and (B, M, P) tensors (``torch.bmm``)."""
        from minigrad.ops.linalg import bmm
        return bmm(self, other)

    # Logical (boolean tensors; no graph)
    def _logical(self, other: Any, op: Any, name: str):
        a, b = self.data, _raw(other)
        if a.dtype != np.bool_ or np.asarray(b).dtype != np.bool_:
            raise TypeError(f"{name}: needs boolean tensors, got dtypes {a.dtype} and "
                            f"{np.asarray(b).dtype}")
        return type(self)(op(a, b))

    def __invert__(self):
        """``~mask``: logical not of a boolean tensor."""
        if self.data.dtype != np.bool_:
            raise TypeError(f"~: needs a boolean tensor, got dtype {self.data.dtype}")
        return type(self)(~self.data)

    def __and__(self, other: Any):
        """``a & b``: logical and of boolean tensors."""
        return self._logical(other, np.logical_and, "&")

    def __or__(self, other: Any):
        """``a | b``: logical or of boolean tensors."""
        return self._logical(other, np.logical_or, "|")

    def __xor__(self, other: Any):
        """``a ^ b``: logical exclusive or of boolean tensors."""
        return self._logical(other, np.logical_xor, "^")

    # Reductions
    @axis_aliases
    def sum(self, axis=None, keepdims: bool = False):
        """Sum over ``dim``/``axis`` (an int, a tuple, or None for all elements);
        ``keepdim``/``keepdims`` keeps the reduced axes with size 1."""
        return rd.Sum.apply(self, axis=axis, keepdims=keepdims)

    @axis_aliases
    def mean(self, axis=None, keepdims: bool = False):
        """Mean over ``dim``/``axis`` (an int, a tuple, or None for all elements)."""
        return rd.Mean.apply(self, axis=axis, keepdims=keepdims)

    @axis_aliases
    def max(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """The largest value. ``max()``: over all elements; ``max(dim)`` / ``max(dim=d)`` as
        PyTorch: a ``(values, indices)`` pair; ``max(axis=d)`` as numpy: the values only.
        ``keepdim``/``keepdims`` keeps the reduced axis. The values' gradient goes to the
        picked element (with ``dim``) or is shared by tied maxima (without)."""
        return _extreme(self, dim, axis, keepdim, keepdims, largest=True)

    @axis_aliases
    def min(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """The smallest value; ``min(dim)`` gives ``(values, indices)``, ``min(axis=d)`` the
        values only (see ``max``)."""
        return _extreme(self, dim, axis, keepdim, keepdims, largest=False)

    @axis_aliases
    def amax(self, axis=None, keepdims: bool = False):
        """The largest values over ``dim``/``axis`` (an int, a tuple or None): values only,
        tied maxima share the gradient (``torch.amax``)."""
        return rd.Max.apply(self, axis=axis, keepdims=keepdims)

    @axis_aliases
    def amin(self, axis=None, keepdims: bool = False):
        """The smallest values over ``dim``/``axis``: values only (``torch.amin``)."""
        return rd.Min.apply(self, axis=axis, keepdims=keepdims)

    @axis_aliases
    def argmax(self, axis: int | None = None, keepdims: bool = False):
        """Index (int64) of the largest element along ``dim``/``axis`` (None: in the
        flattened tensor), the first on ties. No gradient."""
        return sel.ArgExtreme.apply(self, axis=axis, keepdims=keepdims, largest=True)

    @axis_aliases
    def argmin(self, axis: int | None = None, keepdims: bool = False):
        """Index (int64) of the smallest element along ``dim``/``axis`` (see ``argmax``)."""
        return sel.ArgExtreme.apply(self, axis=axis, keepdims=keepdims, largest=False)

    @axis_aliases
    def topk(self, k: int, axis: int = -1, largest: bool = True, sorted: bool = True):
        """``(values, indices)`` of the k largest (``largest=False``: smallest) elements along
        ``dim``/``axis`` (default the last), as ``torch.topk``."""
        return sel.ValuesIndices(*sel.TopK.apply(self, k, axis=axis, largest=largest,
                                                 sorted=sorted))

    @axis_aliases
    def var(self, axis=None, unbiased: bool | None = None, keepdims: bool = False, *,
            correction: int | None = None):
        """Variance over ``dim``/``axis`` with divisor N - correction. The default is
        PyTorch's unbiased estimate (correction 1); ``unbiased=False`` or ``correction=0``
        (numpy's ``ddof=0``) divides by N."""
        return rd.Var.apply(self, axis=axis, correction=_correction(unbiased, correction),
                            keepdims=keepdims)

    @axis_aliases
    def std(self, axis=None, unbiased: bool | None = None, keepdims: bool = False, *,
            correction: int | None = None):
        """Standard deviation: ``var(...).sqrt()`` with the same arguments (unbiased by
        default, as PyTorch)."""
        return self.var(axis, unbiased, keepdims, correction=correction).sqrt()

    @axis_aliases
    def norm(self, p: Any = 2, axis=None, keepdims: bool = False):
        """The p-norm (sum |x|^p)^(1/p) over ``dim``/``axis`` (None: all elements, so p=2 or
        'fro' is the Frobenius norm); p may be any positive number or ``inf``."""
        return rd.Norm.apply(self, p=2.0 if p is None or p == "fro" else p, axis=axis,
                             keepdims=keepdims)

    @axis_aliases
    def cumsum(self, axis: int | None = None):
        """Running sum along ``dim``/``axis`` (None: over the flattened tensor, as numpy)."""
        return rd.CumSum.apply(self, axis=axis)

    @axis_aliases
    def softmax(self, axis: int = -1):
        """exp(x) / sum(exp(x)) along ``dim``/``axis`` (default the last), computed stably."""
        return rd.Softmax.apply(self, axis=axis)

    @axis_aliases
    def log_softmax(self, axis: int = -1):
        """log(softmax(x)) along ``dim``/``axis``, computed stably."""
        return rd.LogSoftmax.apply(self, axis=axis)

    @axis_aliases
    def any(self, axis=None, keepdims: bool = False):
        """True where any element along ``dim``/``axis`` (None: all) is nonzero; a bool
        tensor, no gradient."""
        return type(self)(np.any(self.data, axis=axis, keepdims=keepdims))

    @axis_aliases
    def all(self, axis=None, keepdims: bool = False):
        """True where every element along ``dim``/``axis`` (None: all) is nonzero."""
        return type(self)(np.all(self.data, axis=axis, keepdims=keepdims))

    # Shapes
    def reshape(self, *shape):
        """The same elements in a new shape; one axis may be -1 (inferred)."""
        return sh.Reshape.apply(self, shape=_sizes(shape))

    def view(self, *shape):
        """The same as ``reshape`` (minigrad's data is always contiguous)."""
        return sh.Reshape.apply(self, shape=_sizes(shape))

    def transpose(self, *axes):
        """``transpose(dim0, dim1)`` swaps two axes (PyTorch); ``transpose(perm)`` or
        ``transpose()`` permutes / reverses all axes (numpy)."""
        axes = _sizes(axes)
        if len(axes) == 2:  # torch-style transpose(dim0, dim1): swap two axes
            perm = list(range(self.ndim))
            perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
            axes = tuple(perm)
        return sh.Transpose.apply(self, axes=axes or None)

    def permute(self, *dims):
        """Reorder the axes: ``permute(2, 0, 1)`` or ``permute((2, 0, 1))``."""
        return sh.Transpose.apply(self, axes=_sizes(dims))

    def t(self):
        """The transpose of a matrix (``torch.Tensor.t``): 0-D and 1-D tensors come back as
        they are."""
        if self.ndim > 2:
            raise ValueError(f"t(): expects a tensor of at most 2 dimensions, got shape "
                             f"{self.shape}; use transpose(dim0, dim1)")
        return self.transpose() if self.ndim == 2 else self

    @property
    def T(self):
        """All axes reversed (the transpose of a matrix)."""
        return self.transpose()

    @axis_aliases
    def unsqueeze(self, axis: int):
        """A new axis of size 1 at ``dim``/``axis`` (negative counts from the end)."""
        n = self.ndim + 1
        if not -n <= axis < n:
            raise IndexError(f"unsqueeze: dim {axis} is out of range for shape {self.shape} "
                             f"(allowed [{-n}, {n - 1}])")
        shape = list(self.shape)
        shape.insert(axis % n, 1)
        return sh.Reshape.apply(self, shape=tuple(shape))

    @axis_aliases
    def squeeze(self, axis=None):
        """Remove size-1 axes: all of them, or those among ``dim``/``axis`` (an int or a
        tuple; an axis whose size is not 1 is kept, as PyTorch)."""
        axes = range(self.ndim) if axis is None else \
            (axis,) if isinstance(axis, (int, np.integer)) else axis
        try:
            drop = {int(a) % self.ndim for a in axes if self.shape[a] == 1} if self.ndim else ()
        except IndexError:
            raise IndexError(f"squeeze: dim {axis} is out of range for shape "
                             f"{self.shape}") from None
        shape = tuple(n for i, n in enumerate(self.shape) if i not in drop)
        return sh.Reshape.apply(self, shape=shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """Merge the axes start_dim..end_dim (all by default) into one."""
        if self.ndim == 0:
            return sh.Reshape.apply(self, shape=(1,))
        s, e = start_dim % self.ndim, end_dim % self.ndim
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"for shape {self.shape}")
        shape = self.shape[:s] + (-1,) + self.shape[e + 1:]
        return sh.Reshape.apply(self, shape=shape)

    def expand(self, *sizes):
        """Broadcast to ``sizes`` without copying the math (size-1 axes stretch, -1 keeps an
        axis); the gradient sums the copies back."""
        return sh.Expand.apply(self, shape=_sizes(sizes))

    def expand_as(self, other):
        """``expand(other.shape)``."""
        return sh.Expand.apply(self, shape=other.shape)

    def repeat(self, *sizes):
        """Tile the tensor ``sizes[i]`` times along each axis (``torch.Tensor.repeat``)."""
        return sh.Repeat.apply(self, reps=_sizes(sizes))

    @axis_aliases
    def chunk(self, chunks: int, axis: int = 0):
        """Split into ``chunks`` near-equal pieces along ``dim``/``axis`` (a tuple)."""
        return sh.chunk(self, chunks, axis=axis)

    @axis_aliases
    def split(self, split_size_or_sections, axis: int = 0):
        """Split into pieces of ``split_size`` or of the listed sizes along ``dim``/``axis``
        (a tuple), as ``torch.split``."""
        return sh.split(self, split_size_or_sections, axis=axis)

    # Indexing
    @axis_aliases
    def gather(self, axis: int, index):
        """``out[i][j] = self[index[i][j]][j]`` along ``dim``/``axis`` 0 (likewise for any
        axis), as ``torch.gather``; repeated indices accumulate gradient."""
        return ix.Gather.apply(self, index, axis=axis)

    @axis_aliases
    def index_select(self, axis: int, index):
        """The slices at the 1-D integer ``index`` along ``dim``/``axis``."""
        return ix.IndexSelect.apply(self, index, axis=axis)

    def masked_fill(self, mask, value: float):
        """A copy with ``value`` wherever the boolean ``mask`` (broadcast to this shape) is
        True; those positions get no gradient."""
        return ix.MaskedFill.apply(self, mask, _raw(value))

    def where(self, condition, other):
        """``self`` where the boolean ``condition`` is True, else ``other``
        (``torch.Tensor.where``)."""
        return Where.apply(condition, self, self._lift(other))


def _extreme(x, dim, axis, keepdim, keepdims, largest: bool):
    keep = bool(keepdim if keepdim is not None else keepdims)
    if dim is not None and axis is not None:
        raise TypeError("max/min: dim= and axis= are the same argument; pass one of them")
    if dim is not None:
        if not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{'max' if largest else 'min'}(dim): dim must be an int, got "
                            f"{type(dim).__name__} (amax/amin reduce over several axes)")
        return sel.ValuesIndices(*sel.ExtremeAlong.apply(x, axis=dim, keepdims=keep,
                                                         largest=largest))
    return (rd.Max if largest else rd.Min).apply(x, axis=axis, keepdims=keep)


def _correction(unbiased: bool | None, correction: int | None) -> int:
    if unbiased is not None and correction is not None:
        raise TypeError("var/std: pass unbiased= or correction= (ddof=), not both")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1
