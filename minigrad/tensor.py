"""Tensor: an ndarray, its gradient, and the link to the graph node that produced it.

Operators and methods are thin calls into ``minigrad.ops``; all math lives there.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np

from minigrad import engine

_FLOATS = (np.float32, np.float64)


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        arr = np.asarray(data, dtype=np.dtype(dtype))
        return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        # float32 by default; an ndarray that already is float64 keeps it (as torch.tensor does)
        keep64 = isinstance(data, np.ndarray) and arr.dtype == np.float64
        arr = arr.astype(np.float64 if keep64 else np.float32, copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind == "b":
        pass
    else:
        raise TypeError(f"Tensor: cannot hold data of dtype {arr.dtype}")
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


class Tensor:
    """An n-dimensional array that records the operations applied to it."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_out_index", "_hooks", "name",
                 "__weakref__")
    __array_priority__ = 100.0  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None):
        self.data: np.ndarray = _as_array(data, dtype)
        if requires_grad and self.data.dtype.type not in _FLOATS:
            raise TypeError(f"Tensor: only float32/float64 tensors can require grad, "
                            f"got {self.data.dtype}")
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._out_index = 0
        self._hooks: list[Callable] = []
        self.name = name

    @classmethod
    def _from_op(cls, data: np.ndarray, ctx, index: int) -> "Tensor":
        t = cls.__new__(cls)
        t.data = data if data.flags.c_contiguous else np.ascontiguousarray(data)
        t.grad = None
        t.requires_grad = ctx is not None
        t._ctx = ctx
        t._out_index = index
        t._hooks = ()  # a shared empty tuple: one object fewer per node for the collector
        t.name = None
        return t

    # ---- basic properties ---------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        """The graph node that produced this tensor (None for leaves)."""
        return self._ctx

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors convert to a Python number, "
                             f"this one has shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor._from_op(self.data, None, 0)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if not self.is_leaf:
            raise RuntimeError("requires_grad_(): only leaf tensors can change requires_grad")
        self.requires_grad = flag
        return self

    def astype(self, dtype: Any) -> "Tensor":
        from minigrad.ops import elementwise
        return elementwise.Cast.apply(self, dtype=np.dtype(dtype))

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20,
                               prefix="tensor(")
        extra = ""
        if self.data.dtype != np.float32:
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.op}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- autograd --------------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Compute d self / d leaf for every leaf that requires grad; add it to leaf.grad."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no "
                               "graph; create inputs with requires_grad=True")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be implicit only for a scalar "
                                   f"output, this one has shape {self.shape}; pass grad=")
            g = np.ones_like(self.data)
        else:
            g = np.asarray(grad.data if isinstance(grad, Tensor) else grad,
                           dtype=self.data.dtype)
            if g.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {g.shape}, the tensor has "
                                 f"shape {self.shape}")
        engine.backward(self, g, retain_graph=retain_graph)

    def register_hook(self, hook: Callable[[np.ndarray], Any]) -> Callable[[], None]:
        """Call ``hook(grad)`` with the gradient reaching this tensor during backward.

        The hook may return a replacement gradient. Returns a function that removes it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook(): the tensor does not require grad")
        if self._ctx is None and type(self._hooks) is tuple:  # an op's output made a leaf
            self._hooks = []
        hooks = self._hooks if self._ctx is None else \
            self._ctx.output_hooks.setdefault(self._out_index, [])
        hooks.append(hook)
        return lambda: hooks.remove(hook) if hook in hooks else None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if self._ctx is None:
            return
        ref = weakref.ref(self)

        def store(g):
            t = ref()
            if t is not None:
                t.grad = g.copy() if t.grad is None else t.grad + g
        self.register_hook(store)

    # ---- operators (thin calls into ops) -------------------------------------------------
    def _lift(self, other: Any) -> "Tensor":
        if isinstance(other, Tensor):
            return other
        arr = np.asarray(other)
        if arr.dtype.kind in "fiub" and self.data.dtype.kind == "f":
            arr = arr.astype(self.data.dtype)
        return Tensor(arr)

    def __add__(self, other):
        from minigrad.ops.elementwise import Add
        return Add.apply(self, self._lift(other))

    def __radd__(self, other):
        from minigrad.ops.elementwise import Add
        return Add.apply(self._lift(other), self)

    def __sub__(self, other):
        from minigrad.ops.elementwise import Sub
        return Sub.apply(self, self._lift(other))

    def __rsub__(self, other):
        from minigrad.ops.elementwise import Sub
        return Sub.apply(self._lift(other), self)

    def __mul__(self, other):
        from minigrad.ops.elementwise import Mul
        return Mul.apply(self, self._lift(other))

    def __rmul__(self, other):
        from minigrad.ops.elementwise import Mul
        return Mul.apply(self._lift(other), self)

    def __truediv__(self, other):
        from minigrad.ops.elementwise import Div
        return Div.apply(self, self._lift(other))

    def __rtruediv__(self, other):
        from minigrad.ops.elementwise import Div
        return Div.apply(self._lift(other), self)

    def __neg__(self):
        from minigrad.ops.elementwise import Neg
        return Neg.apply(self)

    def __pow__(self, exponent):
        from minigrad.ops.elementwise import Pow
        if isinstance(exponent, Tensor) or not np.isscalar(exponent):
            raise TypeError("pow: the exponent must be a Python number (scalar exponent)")
        return Pow.apply(self, exponent=float(exponent))

    def __matmul__(self, other):
        from minigrad.ops.linalg import MatMul
        return MatMul.apply(self, self._lift(other))

    def __rmatmul__(self, other):
        from minigrad.ops.linalg import MatMul
        return MatMul.apply(self._lift(other), self)

    def __getitem__(self, index):
        from minigrad.ops.shape import GetItem
        return GetItem.apply(self, index=_unwrap_index(index))

    # comparisons give plain boolean tensors (no graph)
    def __lt__(self, other):
        return Tensor(self.data < _data(other))

    def __le__(self, other):
        return Tensor(self.data <= _data(other))

    def __gt__(self, other):
        return Tensor(self.data > _data(other))

    def __ge__(self, other):
        return Tensor(self.data >= _data(other))

    __hash__ = object.__hash__

    # ---- methods -------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        from minigrad.ops.reduce import Sum
        return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        from minigrad.ops.reduce import Mean
        return Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        from minigrad.ops.reduce import Max
        return Max.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        from minigrad.ops.shape import Reshape
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape.apply(self, shape=shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def transpose(self, *axes):
        from minigrad.ops.shape import Transpose
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 2:  # torch-style transpose(dim0, dim1): swap two axes
            perm = list(range(self.ndim))
            perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
            axes = tuple(perm)
        return Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return self.transpose()

    def tanh(self):
        from minigrad.ops.elementwise import Tanh
        return Tanh.apply(self)

    def sigmoid(self):
        from minigrad.ops.elementwise import Sigmoid
        return Sigmoid.apply(self)

    def relu(self):
        from minigrad.ops.elementwise import ReLU
        return ReLU.apply(self)

    def exp(self):
        from minigrad.ops.elementwise import Exp
        return Exp.apply(self)

    def log(self):
        from minigrad.ops.elementwise import Log
        return Log.apply(self)

    def softmax(self, axis: int = -1):
        from minigrad.ops.reduce import Softmax
        return Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1):
        from minigrad.ops.reduce import LogSoftmax
        return LogSoftmax.apply(self, axis=axis)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _unwrap_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_data(i) for i in index)
    return _data(index)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a Tensor (as ``torch.tensor``)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)
