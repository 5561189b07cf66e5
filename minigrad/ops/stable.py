"""Numerically stable numpy formulas shared by the primitive ops and the numpy twins of the
kernels (minigrad/fast/): the one place each is written. Imports numpy only."""
from __future__ import annotations

import numpy as np


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in x's dtype, without nan or a warning for any x: below about -88
    (float32; -709 for float64) exp(-x) overflows to inf, and 1 / (1 + inf) = 0 is the right
    limit, so that overflow is expected. (Four passes over x and no np.where: where() on a
    mask of mixed signs costs more than the whole formula.)"""
    with np.errstate(over="ignore"):
        e = np.exp(-x)
    return np.asarray(1.0 / (1.0 + e), dtype=x.dtype)
