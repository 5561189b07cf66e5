"""Pure-numpy twins of every compiled kernel in src_ext/, with the same signatures.

These are the readable specification: each compiled kernel is tested equal to its twin, and
the library falls back to them when the extension is not built. Derivation steps are numbered
identically here and in the .pyx files.
"""
from __future__ import annotations

import numpy as np


def tanh_backward(y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """d/dx tanh(x) given y = tanh(x):  (1) dy/dx = 1 - y^2   (2) dx = grad * (1 - y^2)."""
    return grad * (1.0 - y * y)


def sigmoid_backward(y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """d/dx sigmoid(x) given y = sigmoid(x):  (1) dy/dx = y (1 - y)   (2) dx = grad * y (1 - y)."""
    return grad * y * (1.0 - y)
