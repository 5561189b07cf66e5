"""The compiled broadcast arithmetic (minigrad._ext.elementwise add / sub / mul / div) gives
numpy's operators' results bit for bit: on every pair of broadcastable shapes, both operand
orders, float32 and float64, special values (inf, nan, signed zeros, subnormals), and the cases
it hands back to numpy (mixed dtypes, integers, strided views, 0-d and empty arrays,
ndarray subclasses)."""
from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad.fast import _reference as ref

ext = pytest.importorskip("minigrad._ext.elementwise")

OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-40, 3e38, 1.0]


def assert_bits_equal(got, want) -> None:
    """Same type, dtype, shape and bits (nan only as nan: its payload is the CPU's choice)."""
    assert type(got) is type(want)
    want, got = np.asarray(want), np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    if got.dtype.kind == "f":
        bits = f"u{got.dtype.itemsize}"
        np.testing.assert_array_equal(got[~nan].view(bits), want[~nan].view(bits))
    else:
        np.testing.assert_array_equal(got, want)


def values(rng, shape, dtype, specials: bool):
    x = np.asarray(rng.standard_normal(shape) * 10)
    if specials and x.size:
        pick = rng.random(shape) < 0.3
        x[pick] = rng.choice(SPECIALS, size=int(pick.sum()))
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(x, dtype)


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=150)  # microseconds each: many shape pairs
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                 min_side=0, max_side=5),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1),
       specials=st.booleans())
def test_compiled_arithmetic_is_numpy_bit_for_bit(name, shapes, dtype, seed, specials):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes.input_shapes
    a, b = values(rng, a_shape, dtype, specials), values(rng, b_shape, dtype, specials)
    with np.errstate(all="ignore"):
        assert_bits_equal(getattr(ext, name)(a, b), OPS[name](a, b))
        assert_bits_equal(getattr(ext, name)(b, a), OPS[name](b, a))
        assert_bits_equal(getattr(ref, name)(a, b), OPS[name](a, b))


@pytest.mark.parametrize("a_shape, b_shape, case", [
    ((32, 256), (32, 256), "same"),
    ((1, 256), (256,), "same"),
    ((32, 256), (256,), "row"),
    ((32, 256), (1, 256), "row"),
    ((4, 8, 16), (8, 16), "row"),
    ((4, 8, 16), (1, 1, 16), "row"),
    ((32, 256), (32, 1), "column"),
    ((4, 8, 16), (4, 8, 1), "column"),
    ((4, 8, 16), (4, 1, 1), "column"),
    ((32, 256), (), "one"),
    ((32, 256), (1, 1), "one"),
    ((7,), (1,), "one"),
    ((4, 8, 16), (8, 1), None),        # a column of a lower rank: broadcast on two levels
    ((4, 8, 16), (1, 8, 1), None),
    ((32, 1), (1, 32), None),          # both operands are broadcast
    ((), (), None),                    # 0-d: numpy returns a scalar
    ((0, 3), (3,), None),              # empty
])
def test_the_compiled_loop_takes_the_cases_of_a_small_op_graph(a_shape, b_shape, case):
    a = np.ones(a_shape, np.float32)
    b = np.full(b_shape, 2, np.float32)
    assert ext.broadcast_case(a, b) == case
    assert ext.broadcast_case(b, a) == case
    for name, op in OPS.items():
        assert_bits_equal(getattr(ext, name)(a, b), op(a, b))
        assert_bits_equal(getattr(ext, name)(b, a), op(b, a))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_other_operands_are_numpy_s():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8)).astype(np.float32)
    cases = [
        (x, x.astype(np.float64)),               # mixed dtypes: numpy promotes
        (x, np.arange(8)),                       # an integer operand
        (np.arange(48).reshape(6, 8), np.arange(8)),  # integers only
        (x.T, x.T[0]),                           # strided views
        (x[:, ::2], x[0, ::2]),
        (x, 2.5),                                # a Python number
        (x.astype(">f4"), x),                    # the other byte order
        (np.asmatrix(x[:, :6]), np.asmatrix(x[:6, :6])),  # subclasses: their own operators
        (np.ma.masked_greater(x, 1.0), x[0]),
    ]
    for a, b in cases:
        for name, op in OPS.items():
            with np.errstate(all="ignore"):
                assert_bits_equal(getattr(ext, name)(a, b), op(a, b))
    assert ext.broadcast_case(x.T, x.T[0]) is None
    assert ext.broadcast_case(np.asmatrix(x), np.asmatrix(x)) is None
    with pytest.raises(ValueError, match="broadcast"):
        ext.add(x, np.ones(7, np.float32))


def test_the_result_is_a_new_array():
    a = np.ones((3, 4), np.float32)
    b = np.ones(4, np.float32)
    out = ext.add(a, b)
    assert out.flags.c_contiguous and out.flags.owndata
    assert not np.shares_memory(out, a) and not np.shares_memory(out, b)
    out[...] = 7
    assert np.all(a == 1) and np.all(b == 1)
