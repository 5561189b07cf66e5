"""minigrad: a readable autograd engine with RNN, LSTM and GRU as primitive graphs and as
fused Cython kernels."""
import importlib

import numpy as _np

from minigrad.creation import (arange, eye, from_numpy, full, full_like, multinomial, ones,
                               ones_like, rand, randint, randn, zeros, zeros_like)
from minigrad.engine import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minigrad.function import Context, Function
from minigrad.gradcheck import GradcheckError, gradcheck
from minigrad.fast.kernels import backend
from minigrad.function_forms import BUILTIN_NAMES as _BUILTIN_NAMES
from minigrad.function_forms import FORMS as _FORMS
from minigrad.function_forms import pow  # noqa: A004 (as torch.pow; not in __all__)
from minigrad.functional import where
from minigrad.ops.linalg import bmm, matmul, mm
from minigrad.ops.select import ValuesIndices
from minigrad.ops.shape import cat, chunk, concat, split, stack
from minigrad.tensor import Tensor, tensor
from minigrad.fast.threads import get_num_threads, set_blas_threads, set_num_threads

__version__ = "0.1.0"

# dtypes under PyTorch's names (numpy types: use them for dtype= anywhere)
float32 = _np.float32
float64 = _np.float64
int32 = _np.int32
int64 = _np.int64
bool = _np.bool_  # noqa: A001 (as torch.bool; not in __all__, so `import *` keeps builtins)
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001

# tanh, argmax, sum, ...: module-level forms of Tensor methods (minigrad/function_forms.py)
globals().update(_FORMS)

_LAZY = {"save": "minigrad.io", "load": "minigrad.io", "manual_seed": "minigrad.random"}
_SUBMODULES = ("nn", "optim", "functional", "data", "viz", "io", "train", "fast", "kernels",
               "decoding")
_MODULE_PATHS = {"kernels": "minigrad.fast.kernels"}  # kernel dispatch lives on the fast floor

__all__ = [
    "Tensor", "tensor", "Function", "Context", "no_grad", "enable_grad", "is_grad_enabled",
    "set_grad_enabled", "set_num_threads", "get_num_threads", "set_blas_threads", "gradcheck",
    "GradcheckError", "backend", "concat", "cat", "stack", "split", "chunk", "where", "matmul",
    "mm", "bmm", "ValuesIndices", "zeros", "ones", "full", "zeros_like", "ones_like",
    "full_like", "arange", "eye", "randn", "rand", "randint", "from_numpy", "multinomial",
    "float32", "float64", "int32", "int64",
    *_LAZY, *_SUBMODULES, *(n for n in _FORMS if n not in _BUILTIN_NAMES),
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(_MODULE_PATHS.get(name, f"minigrad.{name}"))
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")
