"""User-level functions (as ``torch.nn.functional``): losses, activations, softmax, dropout,
embedding, where and linear. Each is a thin call into the primitive Functions in ``ops``.

``minigrad.nn.functional`` re-exports this module."""
from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import random
from minigrad.ops.aliases import axis_aliases
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
    "layer_norm", "one_hot", "pad", "nll_loss", "gelu", "normalize",
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
                  reduction: str = "mean", weight: Any = None) -> Tensor:
    """Softmax cross-entropy with logits (..., C) (classes LAST) and integer targets (...).

    'mean' averages over targets that are not ``ignore_index``. With per-class ``weight`` (C,)
    it is ``nll_loss(log_softmax(logits), target, weight)`` (PyTorch's weighted mean)."""
    if weight is not None:
        return nll_loss(log_softmax(_tensor(logits), -1), target, weight=weight,
                        ignore_index=ignore_index, reduction=reduction)
    return CrossEntropy.apply(_tensor(logits), _tensor(target), ignore_index=ignore_index,
                              reduction=reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) squared error."""
    input = _tensor(input)
    return MSELoss.apply(input, _tensor(target, input), reduction=reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean",
                                     pos_weight: Any = None, weight: Any = None) -> Tensor:
    """Binary cross-entropy on raw logits (stable: never takes log of a sigmoid). ``weight``
    (broadcast to the logits) rescales each element's loss before the reduction, as PyTorch."""
    logits = _tensor(logits)
    pw = None if pos_weight is None else _tensor(pos_weight, logits)
    if weight is None:
        return BCEWithLogits.apply(logits, _tensor(target, logits), pw, reduction=reduction)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"binary_cross_entropy_with_logits: reduction must be 'mean', 'sum' "
                         f"or 'none', got {reduction!r}")
    w = _tensor(weight, logits)
    if np.broadcast_shapes(w.shape, logits.shape) != logits.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: weight shape {w.shape} does not "
                         f"broadcast to the logits {logits.shape}")
    per_element = BCEWithLogits.apply(logits, _tensor(target, logits), pw,
                                      reduction="none") * w
    return {"mean": per_element.mean, "sum": per_element.sum,
            "none": lambda: per_element}[reduction]()


@axis_aliases
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``/``axis`` (default the last), computed stably."""
    return Softmax.apply(_tensor(x), axis=axis)


@axis_aliases
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``/``axis`` (default the last), computed stably."""
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
    """Elementwise ``a if cond else b`` (broadcasting); gradients flow to a and b.

    ``cond`` must be a boolean Tensor or ndarray (a mask such as ``src != 0``); a Python bool
    is refused, since it would silently select one side everywhere."""
    if not isinstance(cond, (Tensor, np.ndarray)):
        raise TypeError(f"where: condition must be a boolean Tensor or ndarray, got "
                        f"{type(cond).__name__} {cond!r:.40}")
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return Where.apply(_tensor(cond), _tensor(a, like), _tensor(b, like))


def relu(x: Tensor) -> Tensor:
    """max(x, 0), elementwise."""
    return ReLU.apply(_tensor(x))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return Tanh.apply(_tensor(x))


def sigmoid(x: Tensor) -> Tensor:
    """Logistic sigmoid 1 / (1 + exp(-x)), elementwise (stable for large |x|)."""
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


# ---- layer norm, one-hot, pad, nll_loss, gelu, normalize (PyTorch's names and arguments) ------

def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing axes ``normalized_shape`` (an int or a tuple): subtract their
    mean, divide by sqrt(biased variance + eps), then scale by ``weight`` and shift by ``bias``
    (each None or shaped ``normalized_shape``), as ``torch.nn.functional.layer_norm``."""
    from minigrad.ops.layer_ops import LayerNorm
    input = _tensor(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) == 0 or tuple(input.shape[input.ndim - len(shape):]) != shape \
            or len(shape) > input.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} must equal the trailing axes "
                         f"of the input, got input shape {input.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(np.shape(p.data if isinstance(p, Tensor) else p)) != shape:
            raise ValueError(f"layer_norm: {name} shape {np.shape(_tensor(p).data)} must equal "
                             f"normalized_shape {shape}")
    w = None if weight is None else _tensor(weight, input)
    b = None if bias is None else _tensor(bias, input)
    return LayerNorm.apply(input, w, b, normalized_ndim=len(shape), eps=float(eps))


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """Integer class indices (...) -> an int64 tensor (..., num_classes) of 0/1 (no gradient).

    ``num_classes=-1`` uses the largest index + 1, as PyTorch."""
    idx = np.asarray(tensor.data if isinstance(tensor, Tensor) else tensor)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype} "
                        f"(shape {idx.shape})")
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass it")
        num_classes = int(idx.max()) + 1
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"one_hot: indices must lie in [0, {num_classes}), got values in "
                         f"[{int(idx.min())}, {int(idx.max())}] (shape {idx.shape})")
    out = np.zeros(idx.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, idx.astype(np.int64)[..., None], 1, axis=-1)
    return Tensor(out)


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad with a constant (``mode='constant'``, the only mode here). ``pad`` lists (before,
    after) widths starting from the LAST axis, as PyTorch: ``(1, 2)`` pads the last axis by 1
    before and 2 after, ``(1, 2, 0, 3)`` also the second-to-last by 0 and 3. Negative widths
    crop."""
    from minigrad.ops.layer_ops import ConstantPad
    input = _tensor(input)
    pad = tuple(int(p) for p in pad)
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not available; minigrad pads with "
                                  f"mode='constant'")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: the pad tuple {pad} must hold (before, after) pairs for at "
                         f"most {input.ndim} axes (input shape {input.shape})")
    widths = [(0, 0)] * input.ndim
    for k in range(len(pad) // 2):
        widths[input.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return ConstantPad.apply(input, widths=tuple(widths), value=0.0 if value is None else value)


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer targets (...) under log-probabilities (..., C):
    classes LAST, as ``cross_entropy`` (PyTorch puts them in dim 1). ``nll_loss(log_softmax(x),
    t)`` equals ``cross_entropy(x, t)``. ``weight`` (C,) scales each class's terms; 'mean' then
    divides by the summed weight of the counted targets, as PyTorch."""
    from minigrad.ops.layer_ops import NLLLoss
    w = None if weight is None else np.asarray(weight.data if isinstance(weight, Tensor)
                                               else weight)
    return NLLLoss.apply(_tensor(input), _tensor(target), w, ignore_index=ignore_index,
                         reduction=reduction)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU: x * Phi(x) (Phi the standard normal CDF), or with ``approximate='tanh'``
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as PyTorch."""
    from minigrad.ops.layer_ops import GELU
    return GELU.apply(_tensor(input), approximate=approximate)


@axis_aliases
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along ``dim`` (alias ``axis``). The default axis is 1, as PyTorch
    (write ``dim=-1`` for the last axis)."""
    from minigrad.ops.layer_ops import LpNorm
    input = _tensor(input)
    ax = int(dim)
    if not -input.ndim <= ax < input.ndim:
        raise ValueError(f"normalize: dim {ax} is out of range for input shape {input.shape}")
    norm = LpNorm.apply(input, p=float(p), axis=ax)
    floor = np.asarray(eps, dtype=input.dtype)
    return input / where(norm.data > floor, norm, floor)


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
