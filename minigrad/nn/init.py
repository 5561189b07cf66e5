"""Weight initialisation (as torch.nn.init); the default generator lives in minigrad.random.

Every function fills ``tensor.data`` in place and takes ``rng=None``: a numpy ``Generator``, an
int seed, or None for the default generator that ``minigrad.manual_seed(seed)`` resets. Layers
draw their initial weights (and Dropout its masks) from the same generator, so one
``manual_seed`` call makes a whole run repeatable.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.random import resolve_rng
from minigrad.tensor import Tensor

__all__ = ["uniform_", "normal_", "zeros_", "ones_", "constant_", "xavier_uniform_", "xavier_normal_",
           "kaiming_uniform_", "kaiming_normal_", "calculate_gain"]

_rng = resolve_rng


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


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for an activation (PyTorch's table)."""
    if nonlinearity in ("linear", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             rng: Any = None) -> Tensor:
    """Fill with U(a, b)."""
    return _fill(tensor, _rng(rng).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            rng: Any = None) -> Tensor:
    """Fill with N(mean, std^2)."""
    return _fill(tensor, _rng(rng).normal(mean, std, size=tensor.shape))


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1)


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, value)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    rng: Any = None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = _fans(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, rng=rng)


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   rng: Any = None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     rng: Any = None) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He)."""
    fan = _fans(tensor)[0 if mode == "fan_in" else 1]
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, rng=rng)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    rng: Any = None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    fan = _fans(tensor)[0 if mode == "fan_in" else 1]
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), rng=rng)
