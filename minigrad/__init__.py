"""minigrad: a readable autograd engine with RNN, LSTM and GRU as primitive graphs and as
fused Cython kernels."""
import importlib

from minigrad.engine import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minigrad.function import Context, Function
from minigrad.gradcheck import GradcheckError, gradcheck
from minigrad.kernels import backend
from minigrad.ops.shape import concat, split, stack
from minigrad.tensor import Tensor, tensor
from minigrad.threads import get_num_threads, set_blas_threads, set_num_threads

__version__ = "0.1.0"

_LAZY = {"save": "minigrad.io", "load": "minigrad.io", "manual_seed": "minigrad.random"}
_SUBMODULES = ("nn", "optim", "functional", "data", "viz", "io", "train", "kernels",
               "decoding")

__all__ = [
    "Tensor", "tensor", "Function", "Context", "no_grad", "enable_grad", "is_grad_enabled",
    "set_grad_enabled", "set_num_threads", "get_num_threads", "set_blas_threads", "gradcheck",
    "GradcheckError", "backend", "concat", "stack", "split",
    *_LAZY, *_SUBMODULES,
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"minigrad.{name}")
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")
