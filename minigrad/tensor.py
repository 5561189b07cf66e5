"""Tensor: an ndarray, its gradient, and the link to the graph node that produced it.

Operators, conversions and autograd live here; the reduction, shape and index methods in
``minigrad.tensor_methods`` (a base class). All math lives in ``minigrad.ops``.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np

from minigrad import engine
from minigrad.ops import elementwise as _ew
from minigrad.ops.aliases import axis_aliases
from minigrad.ops.linalg import MatMul
from minigrad.ops.shape import GetItem
from minigrad.tensor_methods import TensorMethods

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


class Tensor(TensorMethods):
    """An n-dimensional array that records the operations applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python floats become float32, Python
    ints int64 and bools bool (as ``torch.tensor``); a numpy array keeps float32 / float64.
    Only float tensors can require grad. Operators, comparisons and methods are thin calls into
    the primitive ``Function``s of ``minigrad.ops``."""

    __slots__ = {
        "data": "The numpy array (C-contiguous) holding the values.",
        "grad": "The gradient (an ndarray of the data's shape) after backward(), else None.",
        "requires_grad": "True when backward() should compute this tensor's gradient.",
        "_ctx": "The graph node (Context) that produced this tensor; None for leaves.",
        "_out_index": "Which output of that node this tensor is.",
        "_hooks": "Gradient hooks of a leaf tensor.",
        "name": "An optional label (shown by minigrad.viz).",
        "__weakref__": "Weak references (retain_grad uses one).",
    }
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

    # Basic properties. ``size`` is PyTorch's method (numpy's element count is ``numel()``).
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints (``size()`` gives the same)."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the data (float32 unless asked otherwise)."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """The number of axes (``dim()`` gives the same)."""
        return self.data.ndim

    @axis_aliases
    def size(self, axis: int | None = None) -> tuple[int, ...] | int:
        """The shape (a tuple), or the length of one axis: ``size(dim)`` (as PyTorch).

        Unlike numpy's ``ndarray.size``, this is a method; the element count is ``numel()``."""
        if axis is None:
            return self.data.shape
        try:
            return self.data.shape[axis]
        except (IndexError, TypeError):
            raise IndexError(f"size(): dim {axis!r} is out of range for shape "
                             f"{self.shape}") from None

    def numel(self) -> int:
        """The number of elements (numpy's ``ndarray.size``)."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of axes (as ``torch.Tensor.dim``; ``ndim`` is the same)."""
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (not the output of a recorded op)."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The graph node that produced this tensor (None for leaves)."""
        return self._ctx

    def __len__(self) -> int:
        return len(self.data)

    # Conversions to numpy and Python values
    def numpy(self) -> np.ndarray:
        """The data as a numpy array (the same memory, not a copy)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(t)`` and numpy functions read the data (no copy unless asked)."""
        if dtype is None or np.dtype(dtype) == self.data.dtype:
            return self.data.copy() if copy else self.data
        if copy is False:
            raise ValueError(f"Tensor.__array__: dtype {np.dtype(dtype)} needs a copy of the "
                             f"{self.data.dtype} data, and copy=False was asked")
        return self.data.astype(dtype)

    def item(self) -> float | int | bool:
        """The single value of a one-element tensor as a Python number."""
        return self._one("item()").item()

    def tolist(self) -> Any:
        """The data as (nested) Python lists of Python numbers; a 0-d tensor gives a number."""
        return self.data.tolist()

    def _one(self, op: str) -> np.ndarray:
        if self.data.size != 1:
            raise ValueError(f"{op}: only one-element tensors convert to a Python number, "
                             f"this one has shape {self.shape}")
        return self.data

    def __float__(self) -> float:
        """``float(t)`` of a one-element tensor."""
        return float(self._one("float()").item())

    def __int__(self) -> int:
        """``int(t)`` of a one-element tensor (truncates, as Python's int)."""
        return int(self._one("int()").item())

    def __index__(self) -> int:
        """A one-element integer tensor used as a list index or in ``range``."""
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError(f"only one-element integer tensors can be used as an index, this "
                            f"one has dtype {self.dtype} and shape {self.shape}")
        return int(self.data.item())

    def __bool__(self) -> bool:
        """``if t:`` for one element; more (or none) is ambiguous, as in numpy and torch."""
        if self.data.size != 1:
            what = "an empty tensor" if self.data.size == 0 else \
                "a tensor with more than one element"
            raise ValueError(f"The truth value of {what} is ambiguous (shape {self.shape}). "
                             f"Use a.any() or a.all()")
        return bool(self.data.item())

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor._from_op(self.data, None, 0)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Set requires_grad on a leaf tensor, in place; returns the tensor."""
        if not self.is_leaf:
            raise RuntimeError("requires_grad_(): only leaf tensors can change requires_grad")
        self.requires_grad = flag
        return self

    # dtype conversions: a recorded op (Cast), so gradients flow back between float dtypes
    def astype(self, dtype: Any) -> "Tensor":
        """A copy converted to ``dtype`` (numpy's name; ``to(dtype)`` is PyTorch's)."""
        return _ew.Cast.apply(self, dtype=np.dtype(dtype))

    def to(self, *args: Any, dtype: Any = None) -> "Tensor":
        """``to(dtype)``, ``to(other_tensor)`` (its dtype) or ``to('cpu')`` (minigrad runs on the
        CPU, so a device changes nothing). Returns ``self`` when nothing changes."""
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, str) and arg.split(":")[0] in ("cpu", "cuda", "mps"):
                if not arg.startswith("cpu"):
                    raise ValueError(f"to({arg!r}): minigrad runs on the CPU only")
            else:
                dtype = arg
        if dtype is None or np.dtype(dtype) == self.data.dtype:
            return self
        return self.astype(dtype)

    def float(self) -> "Tensor":
        """Convert to float32."""
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        """Convert to float64."""
        return self.astype(np.float64)

    def long(self) -> "Tensor":
        """Convert to int64 (no gradient flows through integers)."""
        return self.astype(np.int64)

    def int(self) -> "Tensor":
        """Convert to int32 (as ``torch.Tensor.int``; no gradient flows through integers)."""
        return self.astype(np.int32)

    def bool(self) -> "Tensor":
        """Convert to bool (nonzero is True)."""
        return self.astype(np.bool_)

    def clone(self) -> "Tensor":
        """A copy of the data that stays in the graph (gradients flow back to this tensor)."""
        return _ew.Cast.apply(self, dtype=self.data.dtype)

    def contiguous(self) -> "Tensor":
        """The tensor itself: minigrad's data is always C-contiguous."""
        return self

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

    # Autograd
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
        if self._ctx is None:
            hooks = self._hooks
        else:
            if self._ctx.output_hooks is None:
                self._ctx.output_hooks = {}
            hooks = self._ctx.output_hooks.setdefault(self._out_index, [])
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

    # Operators: thin calls into minigrad.ops
    def _lift(self, other: Any) -> "Tensor | np.ndarray":
        """The other operand of an operator: a Tensor as it is; a number or an array as a
        constant array (an op argument that is no Tensor gets no gradient), cast to this
        tensor's dtype when this one is float (``x * 0.5`` stays float32)."""
        if isinstance(other, Tensor):
            return other
        dtype = self.data.dtype
        if dtype.kind == "f" and (type(other) is float or type(other) is int):
            return np.array(other, dtype=dtype)  # the common case, without the checks below
        arr = np.asarray(other)
        if arr.dtype.kind in "fiub" and dtype.kind == "f":
            arr = arr.astype(dtype)
        return Tensor(arr).data  # Tensor's dtype rules and its error for other data

    def __add__(self, other):
        return _ew.Add.apply(self, self._lift(other))

    def __radd__(self, other):
        return _ew.Add.apply(self._lift(other), self)

    def __sub__(self, other):
        return _ew.Sub.apply(self, self._lift(other))

    def __rsub__(self, other):
        return _ew.Sub.apply(self._lift(other), self)

    def __mul__(self, other):
        return _ew.Mul.apply(self, self._lift(other))

    def __rmul__(self, other):
        return _ew.Mul.apply(self._lift(other), self)

    def __truediv__(self, other):
        return _ew.Div.apply(self, self._lift(other))

    def __rtruediv__(self, other):
        return _ew.Div.apply(self._lift(other), self)

    def __neg__(self):
        return _ew.Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or np.ndim(exponent) > 0:
            return _ew.PowTensor.apply(self, self._lift(exponent))
        if not np.isscalar(exponent) and not isinstance(exponent, np.ndarray):
            raise TypeError(f"pow: the exponent must be a number or a tensor, got "
                            f"{type(exponent).__name__}")
        return _ew.Pow.apply(self, exponent=float(exponent))

    def __rpow__(self, base):
        return _ew.PowTensor.apply(self._lift(base), self)

    def __matmul__(self, other):
        return MatMul.apply(self, self._lift(other))

    def __rmatmul__(self, other):
        return MatMul.apply(self._lift(other), self)

    def __getitem__(self, index):
        return GetItem.apply(self, index=_unwrap_index(index))

    # Comparisons give boolean tensors, elementwise (no graph), as in PyTorch and numpy
    def __lt__(self, other):
        return Tensor(self.data < _data(other))

    def __le__(self, other):
        return Tensor(self.data <= _data(other))

    def __gt__(self, other):
        return Tensor(self.data > _data(other))

    def __ge__(self, other):
        return Tensor(self.data >= _data(other))

    def __eq__(self, other):
        """Elementwise ``==``: a bool tensor (use ``t is u`` for identity)."""
        return Tensor(self.data == _data(other))

    def __ne__(self, other):
        """Elementwise ``!=``: a bool tensor."""
        return Tensor(self.data != _data(other))

    # hashable by identity (as PyTorch): tensors work as dict keys and in sets
    __hash__ = object.__hash__


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _unwrap_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_data(i) for i in index)
    return _data(index)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a Tensor (as ``torch.tensor``)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)

