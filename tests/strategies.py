"""Shared hypothesis strategies: shapes, broadcastable shape pairs, bounded float64 arrays,
and values kept away from the points where an op is not differentiable."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_SIDE = 4


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1,
           max_side: int = MAX_SIDE) -> st.SearchStrategy:
    """Small array shapes (gradcheck costs two forward passes per element)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_pair(min_dims: int = 0, max_dims: int = 3) -> st.SearchStrategy:
    """Two shapes that broadcast together (size-1 axes and missing leading axes included)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=min_dims,
                                             max_dims=max_dims, max_side=3).map(
        lambda b: b.input_shapes)


def floats(shape, low: float = -3.0, high: float = 3.0) -> st.SearchStrategy:
    """float64 arrays of ``shape`` with values in [low, high] (no nan / inf)."""
    return hnp.arrays(np.float64, shape, elements=st.floats(
        low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False))


def away_from_zero(shape, low: float = 0.1, high: float = 3.0) -> st.SearchStrategy:
    """Values with |x| in [low, high]: relu, and divisors, are smooth there."""
    mags = floats(shape, low, high)
    signs = hnp.arrays(np.bool_, shape)
    return st.tuples(mags, signs).map(lambda ms: np.where(ms[1], ms[0], -ms[0]))


def positives(shape, low: float = 0.2, high: float = 4.0) -> st.SearchStrategy:
    """Strictly positive values (for log, and pow with a fractional exponent)."""
    return floats(shape, low, high)


def distinct(shape, spacing: float = 0.05) -> st.SearchStrategy:
    """Values that are pairwise at least ``spacing`` apart, so max has one clear winner."""
    size = int(np.prod(shape))
    return st.permutations(range(size)).flatmap(
        lambda perm: floats((size,), 0.0, spacing * 0.3).map(
            lambda jitter: ((np.asarray(perm, dtype=np.float64) - size / 2) * spacing * 2
                            + jitter).reshape(shape)))


@st.composite
def shape_and_axis(draw, min_dims: int = 1, max_dims: int = 3):
    """A shape and a valid axis (negative axes included) or None."""
    shape = draw(shapes(min_dims, max_dims))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    return shape, axis


@st.composite
def class_targets(draw, lead_shape, n_classes: int, ignore_index: int = -100):
    """Integer targets shaped ``lead_shape`` in [0, n_classes), some set to ignore_index."""
    t = draw(hnp.arrays(np.int64, lead_shape, elements=st.integers(0, n_classes - 1)))
    ignore = draw(hnp.arrays(np.bool_, lead_shape))
    return np.where(ignore & (np.arange(t.size).reshape(lead_shape) % 3 == 0), ignore_index, t)
