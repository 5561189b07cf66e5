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
    "masked_softmax", "scaled_dot_product_attention",
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
    return Dropout.apply(x, float(p), _generator(rng))


def _generator(rng: Any) -> np.random.Generator:
    # a Generator passes through default_rng unchanged; an int seeds a new one
    return random.default_generator() if rng is None else np.random.default_rng(rng)


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


# ---- attention ------------------------------------------------------------------------------
def masked_softmax(scores: Tensor, mask: Any = None, axis: int = -1) -> Tensor:
    """Softmax of ``scores`` over ``axis`` where only positions with ``mask`` True count.

    ``mask`` is a boolean array broadcastable to ``scores`` (None: plain softmax). Masked
    positions get weight exactly 0 and gradient exactly 0; a slice whose mask is all False
    gets all zeros (not NaN). Built from primitives: where -> softmax -> where."""
    scores = _tensor(scores)
    if mask is None:
        return Softmax.apply(scores, axis=axis)
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"masked_softmax: mask must be boolean, got dtype {mask.dtype} "
                         f"with shape {mask.shape}")
    try:
        np.broadcast_shapes(mask.shape, scores.shape)
    except ValueError:
        raise ValueError(f"masked_softmax: mask of shape {mask.shape} does not broadcast to "
                         f"scores of shape {scores.shape}") from None
    # 1. a masked score becomes the most negative finite number: exp(it - max) is exactly 0
    #    whenever the slice has one real score (a finite stand-in, so no inf - inf = NaN)
    lowest = np.array(np.finfo(scores.dtype).min, dtype=scores.dtype)
    weights = Softmax.apply(Where.apply(Tensor(mask), scores, Tensor(lowest)), axis=axis)
    if np.all(np.any(mask, axis=axis)):
        return weights
    # 2. an all-masked slice came out uniform in step 1: zero it (and every masked weight)
    return Where.apply(Tensor(mask), weights, Tensor(np.zeros((), dtype=scores.dtype)))


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Any = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 rng: Any = None) -> Tensor:
    """softmax(Q K^T * scale + mask) V with PyTorch's shapes: query (..., L, E), key (..., S, E),
    value (..., S, Ev) -> (..., L, Ev); batch dimensions broadcast; scale defaults to
    1/sqrt(E).

    ``attn_mask``: boolean, broadcastable to (..., L, S), True where a query may attend; or a
    float array added to the scores. ``is_causal=True`` lets query i attend keys j <= i.
    A query row with no key it may attend gives zeros (as PyTorch 2.13 on the CPU; older
    PyTorch versions gave NaN there). Built from
    primitives (matmul, transpose, mul, where, softmax), so the engine derives the backward.
    ``dropout_p`` drops attention weights (training-time use, ``rng`` as in ``dropout``)."""
    query, key, value = _tensor(query), _tensor(key), _tensor(value)
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: query, key and value need at least "
                         f"2 dimensions, got {query.shape}, {key.shape}, {value.shape}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {query.shape} (..., L, E), key "
                         f"{key.shape} (..., S, E) and value {value.shape} (..., S, Ev) do "
                         f"not fit")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    length, source = query.shape[-2], key.shape[-2]
    scale = 1.0 / np.sqrt(query.shape[-1]) if scale is None else float(scale)
    # 1. scores (..., L, S) = Q K^T * scale
    scores = MatMul.apply(query, Transpose.apply(key, axes=_swap_last(key.ndim)))
    scores = scores * np.array(scale, dtype=scores.dtype)
    mask = None
    if is_causal:
        mask = np.tril(np.ones((length, source), dtype=bool))
    elif attn_mask is not None:
        m = np.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
        try:
            np.broadcast_shapes(m.shape, scores.shape)
        except ValueError:
            raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {m.shape} "
                             f"does not broadcast to the scores' shape {scores.shape} "
                             f"(..., L, S)") from None
        if m.dtype == np.bool_:
            mask = m
        else:
            # 2. a float mask is added to the scores
            scores = scores + (attn_mask if isinstance(attn_mask, Tensor)
                               else Tensor(m.astype(scores.dtype)))
    # 3. weights over S (masked: exactly 0; an empty row: all 0), then the weighted values
    weights = masked_softmax(scores, mask, axis=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True, rng)
    return MatMul.apply(weights, value)


def _swap_last(ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
