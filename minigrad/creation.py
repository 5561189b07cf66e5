"""Tensor constructors with PyTorch's names and defaults: zeros, ones, full, arange, eye, the
random ones (drawn from minigrad's default generator, which ``minigrad.manual_seed`` resets),
from_numpy (sharing memory) and multinomial sampling.

Floats default to float32 and integers to int64; ``dtype=`` takes a numpy dtype, its name, or
``minigrad.float32`` / ``float64`` / ``int64`` / ``long`` / ...; ``requires_grad=`` as torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.random import resolve_rng as _gen  # None, an int seed or a Generator
from minigrad.tensor import Tensor

__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "eye",
           "randn", "rand", "randint", "from_numpy", "multinomial"]


def _shape(op: str, size: tuple) -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` all mean the shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in size):
        raise ValueError(f"{op}: a shape is non-negative integers, got {size!r}")
    return tuple(int(n) for n in size)


def _dt(dtype: Any, default: Any) -> np.dtype:
    return np.dtype(default if dtype is None else dtype)


def _make(arr: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad, dtype=arr.dtype)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``; float32 unless ``dtype``."""
    return _make(np.zeros(_shape("zeros", size), _dt(dtype, np.float32)), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``; float32 unless ``dtype``."""
    return _make(np.ones(_shape("ones", size), _dt(dtype, np.float32)), requires_grad)


def _fill_dtype(value: Any) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value (bool,
    int64 or float32) unless given, as ``torch.full``."""
    dt = np.dtype(dtype) if dtype is not None else _fill_dtype(fill_value)
    size = size if isinstance(size, (tuple, list)) else (size,)
    return _make(np.full(_shape("full", tuple(size)), fill_value, dtype=dt), requires_grad)


def zeros_like(t: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and, unless given, the dtype) of ``t``."""
    return _make(np.zeros(np.shape(t), _dt(dtype, _dtype_of(t))), requires_grad)


def ones_like(t: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and, unless given, the dtype) of ``t``."""
    return _make(np.ones(np.shape(t), _dt(dtype, _dtype_of(t))), requires_grad)


def full_like(t: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with the shape (and, unless given, the dtype) of ``t``."""
    return _make(np.full(np.shape(t), fill_value, _dt(dtype, _dtype_of(t))),
                 requires_grad)


def _dtype_of(t: Any) -> np.dtype:
    return t.dtype if hasattr(t, "dtype") else Tensor(t).dtype


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (0 if only one bound is given) up to, not including, ``end`` in
    steps of ``step``: int64 when all three are integers, else float32 (as ``torch.arange``)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dt = np.dtype(dtype) if dtype is not None else np.dtype(np.int64 if ints else np.float32)
    # computed in float64 (or int64), then converted: float32 steps do not drift
    arr = np.arange(start, end, step, dtype=np.int64 if ints else np.float64).astype(dt)
    return _make(arr, requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The (n, m) identity matrix (m = n by default), float32 unless ``dtype``."""
    return _make(np.eye(n, m, dtype=_dt(dtype, np.float32)), requires_grad)


def _float_dtype(op: str, dtype: Any) -> np.dtype:
    dt = _dt(dtype, np.float32)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{op}: dtype must be float32 or float64, got {dt}")
    return dt


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False,
          generator: Any = None) -> Tensor:
    """Standard-normal samples of the given shape (float32 unless ``dtype``), from the default
    generator (``minigrad.manual_seed``) or ``generator`` (a numpy Generator or an int seed)."""
    dt = _float_dtype("randn", dtype)
    return _make(_gen(generator, "randn").standard_normal(_shape("randn", size), dtype=dt),
                 requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False,
         generator: Any = None) -> Tensor:
    """Uniform samples in [0, 1) of the given shape (float32 unless ``dtype``); generator as
    in ``randn``."""
    dt = _float_dtype("rand", dtype)
    return _make(_gen(generator, "rand").random(_shape("rand", size), dtype=dt), requires_grad)


def randint(*args: Any, size: Any = None, dtype: Any = None, generator: Any = None) -> Tensor:
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``
    as ``torch.randint`` (int64 unless ``dtype``); generator as in ``randn``."""
    if size is None and args and isinstance(args[-1], (tuple, list)):
        args, size = args[:-1], args[-1]
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint: call randint(high, size) or randint(low, high, size), with "
                        "size a tuple")
    low, high = (0, args[0]) if len(args) == 1 else args
    if high <= low:
        raise ValueError(f"randint: need low < high, got low={low}, high={high}")
    arr = _gen(generator, "randint").integers(low, high, _shape("randint", tuple(size)),
                                              dtype=np.int64)
    return _make(arr.astype(_dt(dtype, np.int64), copy=False), False)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory (as ``torch.from_numpy``): writes to one show in the
    other; the dtype is kept. minigrad tensors are C-contiguous, so a strided view is refused
    (``np.ascontiguousarray`` makes a copy that is)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: cannot share data of dtype {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"from_numpy: the array (shape {array.shape}, strides "
                         f"{array.strides}) is not C-contiguous, so it cannot be shared; pass "
                         f"np.ascontiguousarray(array) (a copy)")
    return Tensor(array, dtype=array.dtype)


def multinomial(input: Any, num_samples: int, replacement: bool = False,
                generator: Any = None) -> Tensor:
    """Draw ``num_samples`` category indices (int64) from the probabilities ``input`` (C,) or
    one row per batch (B, C) (non-negative weights, normalised per row), as
    ``torch.multinomial``. Without replacement a category is drawn at most once per row.
    Seeded by ``minigrad.manual_seed`` unless ``generator`` is given."""
    p = np.asarray(getattr(input, "data", input), dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[-1] == 0:
        raise ValueError(f"multinomial: probabilities must be (C,) or (B, C) with C > 0, got "
                         f"shape {p.shape}")
    rows = p.reshape(-1, p.shape[-1])
    if not np.all(np.isfinite(rows)) or (rows < 0).any():
        raise ValueError(f"multinomial: probabilities must be finite and non-negative "
                         f"(shape {p.shape})")
    totals = rows.sum(axis=1)
    nonzero = (rows > 0).sum(axis=1)
    if (totals <= 0).any():
        raise ValueError(f"multinomial: row {int(np.argmin(totals))} of the probabilities "
                         f"(shape {p.shape}) sums to zero")
    if not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be a positive integer, got "
                         f"{num_samples!r}")
    if not replacement and num_samples > nonzero.min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement "
                         f"from a row with {int(nonzero.min())} nonzero probabilities")
    rng = _gen(generator, "multinomial")
    out = np.stack([rng.choice(rows.shape[1], size=num_samples, replace=replacement,
                               p=row / total) for row, total in zip(rows, totals)])
    return Tensor(out.reshape(p.shape[:-1] + (num_samples,)).astype(np.int64))
