"""User-level functions (as ``torch.nn.functional``): losses, activations, softmax, dropout,
embedding, where and linear. Each is a thin call into the primitive Functions in ``ops``.

``minigrad.nn.functional`` re-exports this module."""
from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import random

from minigrad.ops.elementwise import ReLU, Sigmoid, Tanh
from minigrad.ops.linalg import Linear, MatMul
from minigrad.ops.loss import BCEWithLogits, CrossEntropy, MSELoss
from minigrad.ops.nn_ops import Dropout, Embedding, Where
from minigrad.ops.reduce import LogSoftmax, Softmax
from minigrad.ops.shape import Transpose
from minigrad.tensor import Tensor

__all__ = [
    "cross_entropy", "mse_loss", "binary_cross_entropy_with_logits", "softmax", "log_softmax",
    "dropout", "embedding", "where", "relu", "tanh", "sigmoid", "linear",
]


def _tensor(x: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    if like is not None and arr.dtype.kind in "fiub" and like.dtype.kind == "f":
        arr = arr.astype(like.dtype)
    return Tensor(arr)


def cross_entropy(logits: Tensor, target: Any, ignore_index: int = -100,
                  reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy with logits (..., C) (classes LAST) and integer targets (...).

    'mean' averages over targets that are not ``ignore_index``."""
    return CrossEntropy.apply(_tensor(logits), _tensor(target), ignore_index=ignore_index,
                              reduction=reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) squared error."""
    input = _tensor(input)
    return MSELoss.apply(input, _tensor(target, input), reduction=reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """Binary cross-entropy on raw logits (stable: never takes log of a sigmoid)."""
    logits = _tensor(logits)
    pw = None if pos_weight is None else _tensor(pos_weight, logits)
    return BCEWithLogits.apply(logits, _tensor(target, logits), pw, reduction=reduction)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return Softmax.apply(_tensor(x), axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(_tensor(x), axis=axis)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: Any = None) -> Tensor:
    """Zero elements with probability p, scale the rest by 1/(1-p); identity when not training.

    ``rng`` is a ``numpy.random.Generator`` or an int seed; None draws from minigrad's
    default generator (the one ``minigrad.manual_seed`` resets)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = _tensor(x)
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, float(p), random.resolve_rng(rng, "dropout"))


def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` of any shape."""
    return Embedding.apply(_tensor(indices), weight, padding_idx=padding_idx)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a if cond else b`` (broadcasting); gradients flow to a and b."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return Where.apply(_tensor(cond), _tensor(a, like), _tensor(b, like))


def relu(x: Tensor) -> Tensor:
    return ReLU.apply(_tensor(x))


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(_tensor(x))


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(_tensor(x))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias with weight shaped (out_features, in_features) as in PyTorch."""
    if weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {x.shape} and weight {weight.shape} do not fit "
                         f"(need input (..., in) and weight (out, in))")
    if x.ndim >= 1 and (bias is None or np.shape(bias) == (weight.shape[0],)):
        # the usual case: one fused node (a single GEMM each way, bias added in place)
        return Linear.apply(_tensor(x), weight, bias)
    out = MatMul.apply(_tensor(x), Transpose.apply(weight, axes=(1, 0)))
    return out if bias is None else out + bias
