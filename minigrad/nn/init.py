"""Weight initialisation (as torch.nn.init); the default generator lives in minigrad.random.

Every function fills ``tensor.data`` in place. The random ones take ``rng=None`` (alias
``generator=``, PyTorch's keyword): a numpy ``Generator``, an int seed, or None for the
default generator that ``minigrad.manual_seed(seed)`` resets. Layers draw their initial
weights (and Dropout its masks) from the same generator, so one ``manual_seed`` call makes a
whole run repeatable.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.random import resolve_rng
from minigrad.tensor import Tensor

__all__ = ["uniform_", "normal_", "zeros_", "ones_", "constant_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "calculate_gain"]


def _rng(rng: Any, generator: Any = None) -> np.random.Generator:
    """The generator to draw from: ``rng`` or its alias ``generator`` (a Generator, an int seed,
    or None for the default generator)."""
    if rng is not None and generator is not None:
        raise TypeError("init: rng= and generator= are the same argument; pass one of them")
    return resolve_rng(rng if rng is not None else generator, "init")


def _fill(tensor: Tensor, values: Any) -> Tensor:
    tensor.data[...] = values
    return tensor


def _fans(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out as PyTorch's (out, in, *kernel)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"init: fan in/out need a weight with at least 2 dimensions, got "
                         f"shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _mode_index(op: str, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return 0 if mode == "fan_in" else 1


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for an activation (PyTorch's table)."""
    if nonlinearity in ("linear", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        return 1.0
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             rng: Any = None, generator: Any = None) -> Tensor:
    """Fill with U(a, b)."""
    return _fill(tensor, _rng(rng, generator).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            rng: Any = None, generator: Any = None) -> Tensor:
    """Fill with N(mean, std^2)."""
    return _fill(tensor, _rng(rng, generator).normal(mean, std, size=tensor.shape))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return _fill(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return _fill(tensor, 1)


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill with ``value``."""
    return _fill(tensor, value)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    rng: Any = None, generator: Any = None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = _fans(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, rng=_rng(rng, generator))


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   rng: Any = None, generator: Any = None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)),
                   rng=_rng(rng, generator))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     rng: Any = None, generator: Any = None) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He); ``fan`` is fan_in or fan_out
    (``mode``), the gain that of ``nonlinearity`` with negative slope ``a``."""
    fan = _fans(tensor)[_mode_index("kaiming_uniform_", mode)]
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, rng=_rng(rng, generator))


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    rng: Any = None, generator: Any = None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    fan = _fans(tensor)[_mode_index("kaiming_normal_", mode)]
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan),
                   rng=_rng(rng, generator))


def orthogonal_(tensor: Tensor, gain: float = 1.0,
                rng: Any = None, generator: Any = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al.), as PyTorch.

    The tensor is viewed as (shape[0], rest): its rows are orthonormal when shape[0] <= rest,
    its columns otherwise. A recurrent weight (gates*H, H) is orthogonalised as one matrix (its
    columns are orthonormal), not gate block by gate block. Made from the QR decomposition of a
    normal draw, with the signs fixed so the result is uniformly distributed."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: needs a tensor with at least 2 dimensions, got shape "
                         f"{tensor.shape}")
    rows = tensor.shape[0]
    cols = tensor.data.size // rows if rows else 0
    if rows == 0 or cols == 0:
        return tensor
    flat = _rng(rng, generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    # 1. QR is unique only up to the signs of R's diagonal: make them positive (Haar measure)
    d = np.sign(np.diag(r))
    q = q * np.where(d == 0, 1.0, d)
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape))
