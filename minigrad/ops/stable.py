"""Numerically stable numpy formulas shared by the primitive ops and the numpy twins of the
kernels (minigrad/fast/): the one place each is written. Imports numpy only."""
from __future__ import annotations

import numpy as np


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|, and the result keeps x's
    dtype."""
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)), dtype=x.dtype)
