"""The ops of the PyTorch-style Tensor API pass gradcheck in float64 on hypothesis-drawn shapes
(broadcasting where it applies) and values; integer and boolean results carry no gradient."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import Tensor
from strategies import (away_from_zero, broadcastable_pair, distinct, floats, positives,
                        shape_and_axis, shapes)


def leaf(arr) -> Tensor:
    return Tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


@st.composite
def shape_and_dim(draw, min_dims: int = 1, max_dims: int = 3):
    """A shape and one valid axis (negative ones included)."""
    shape = draw(shapes(min_dims, max_dims))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


# ---- elementwise ------------------------------------------------------------------------

@given(st.data(), broadcastable_pair())
def test_pow_with_a_tensor_exponent(data, pair):
    sa, sb = pair
    a, b = leaf(data.draw(positives(sa))), leaf(data.draw(floats(sb, -2, 2)))
    assert mg.gradcheck(lambda a, b: a ** b, [a, b])
    assert mg.gradcheck(lambda a, b: mg.pow(a, b) + a.pow(b), [a, b])
    assert mg.gradcheck(lambda b: 2.0 ** b + mg.pow(3.0, b), [b])


@given(st.data(), shapes(0, 3))
def test_abs_sqrt(data, shape):
    assert mg.gradcheck(lambda x: x.abs(), [leaf(data.draw(away_from_zero(shape)))])
    assert mg.gradcheck(lambda x: x.sqrt(), [leaf(data.draw(positives(shape)))])


@given(st.data(), shapes(0, 3), st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None)]))
def test_clamp_and_clip(data, shape, bounds):
    lo, hi = bounds
    # values kept away from the bounds, where the clamp has a kink
    x = data.draw(floats(shape, -3, 3).filter(
        lambda a: all(b is None or np.all(np.abs(a - b) > 1e-3) for b in bounds)))
    assert mg.gradcheck(lambda x: x.clamp(lo, hi) * x, [leaf(x)])
    assert mg.gradcheck(lambda x: x.clip(min=lo, max=hi), [leaf(x)])


# ---- reductions -------------------------------------------------------------------------

@given(st.data(), shape_and_axis(), st.booleans(), st.sampled_from([0, 1, 2]))
def test_var_std(data, shape_axis, keepdim, correction):
    shape, axis = shape_axis
    n = int(np.prod(shape if axis is None else shape[axis]))
    x = leaf(data.draw(distinct(shape)))
    if n > correction:
        assert mg.gradcheck(lambda x: x.var(dim=axis, keepdim=keepdim, correction=correction),
                            [x])
    if n > correction and n > 1:
        assert mg.gradcheck(lambda x: x.std(axis=axis, keepdims=keepdim, ddof=correction), [x])


@given(st.data(), shape_and_axis(), st.booleans(), st.sampled_from([1, 2, 3, 1.5, np.inf]))
def test_norm(data, shape_axis, keepdim, p):
    shape, axis = shape_axis
    x = leaf(data.draw(distinct(shape)) + 0.013)  # no exact zeros, where |x| has a kink
    assert mg.gradcheck(lambda x: x.norm(p, dim=axis, keepdim=keepdim), [x])


@given(st.data(), shape_and_axis())
def test_cumsum(data, shape_axis):
    shape, axis = shape_axis
    assert mg.gradcheck(lambda x: x.cumsum(axis), [leaf(data.draw(floats(shape)))])


@given(st.data(), shape_and_axis(), st.booleans(), st.sampled_from(["min", "amax", "amin"]))
def test_min_amax_amin_values(data, shape_axis, keepdims, op):
    shape, axis = shape_axis
    x = leaf(data.draw(distinct(shape)))
    assert mg.gradcheck(lambda x: getattr(x, op)(axis=axis, keepdims=keepdims), [x])


@given(st.data(), shape_and_dim(), st.booleans(), st.sampled_from(["max", "min"]))
def test_max_min_with_dim_give_values_and_indices(data, shape_dim, keepdim, op):
    shape, dim = shape_dim
    x = leaf(data.draw(distinct(shape)))
    values, indices = getattr(x, op)(dim, keepdim=keepdim)
    assert indices.dtype == np.int64 and not indices.requires_grad
    expect = getattr(np, f"arg{op}")(x.data, axis=dim)
    np.testing.assert_array_equal(indices.data, np.expand_dims(expect, dim) if keepdim
                                  else expect)
    assert mg.gradcheck(lambda x: getattr(x, op)(dim=dim, keepdim=keepdim).values, [x])
    # the tuple itself: the integer output is passed over
    assert mg.gradcheck(lambda x: tuple(getattr(x, op)(dim)), [x])


@given(st.data(), shape_and_dim(), st.booleans(), st.booleans())
def test_topk(data, shape_dim, largest, sorted_):
    shape, dim = shape_dim
    x = leaf(data.draw(distinct(shape)))
    k = data.draw(st.integers(0, shape[dim]))
    values, indices = x.topk(k, dim=dim, largest=largest, sorted=sorted_)
    np.testing.assert_array_equal(values.data, np.take_along_axis(x.data, indices.data, dim))
    assert mg.gradcheck(lambda x: x.topk(k, dim, largest, sorted_).values, [x])


@given(st.data(), shape_and_axis(), st.booleans())
def test_integer_and_boolean_results_carry_no_gradient(data, shape_axis, keepdim):
    shape, axis = shape_axis
    x = leaf(data.draw(distinct(shape)))
    outs = [x.argmax(dim=axis, keepdim=keepdim), x.argmin(axis=axis), x == x, x != 0,
            x > 0, (x > 0).any(axis), x.long(), x.int(), x.bool()]
    for out in outs:
        assert out.dtype.kind in "iub" and not out.requires_grad and out.grad_fn is None


# ---- shapes and indexing ----------------------------------------------------------------

@given(st.data(), shapes(0, 3))
def test_unsqueeze_squeeze_flatten_view_permute(data, shape):
    x = leaf(data.draw(floats(shape)))
    d = data.draw(st.integers(-len(shape) - 1, len(shape)))
    perm = data.draw(st.permutations(range(len(shape))))
    assert mg.gradcheck(lambda x: x.unsqueeze(d).squeeze(d) * x, [x])
    assert mg.gradcheck(lambda x: x.unsqueeze(dim=d).squeeze(), [x])
    assert mg.gradcheck(lambda x: x.flatten(), [x])
    assert mg.gradcheck(lambda x: x.view(-1).reshape(shape), [x])
    assert mg.gradcheck(lambda x: x.permute(*perm), [x])


@given(st.data(), broadcastable_pair(0, 3))
def test_expand(data, pair):
    small, _ = pair
    target = np.broadcast_shapes(*pair)
    x = leaf(data.draw(floats(small)))
    assert mg.gradcheck(lambda x: x.expand(*target), [x])
    assert mg.gradcheck(lambda x: x.expand_as(Tensor(np.zeros(target))), [x])


@given(st.data(), shapes(0, 3), st.lists(st.integers(0, 3), min_size=0, max_size=2))
def test_repeat(data, shape, extra):
    x = leaf(data.draw(floats(shape)))
    reps = tuple(extra) + tuple(data.draw(st.integers(0, 3)) for _ in shape)
    np.testing.assert_array_equal(x.repeat(*reps).data if reps else x.data,
                                  np.tile(x.data, reps) if reps else x.data)
    if reps:
        assert mg.gradcheck(lambda x: x.repeat(reps), [x])


@given(st.data(), shape_and_dim(), st.integers(1, 5))
def test_chunk_and_split_methods(data, shape_dim, n):
    shape, dim = shape_dim
    x = leaf(data.draw(floats(shape)))
    pieces = x.chunk(n, dim=dim)
    np.testing.assert_array_equal(mg.cat(pieces, dim).data, x.data)
    assert mg.gradcheck(lambda x: x.chunk(n, dim)[0] * 2.0, [x])
    assert mg.gradcheck(lambda x: x.split(n, axis=dim), [x])


@given(st.data(), shape_and_dim())
def test_gather_with_repeated_indices(data, shape_dim):
    shape, dim = shape_dim
    x = leaf(data.draw(floats(shape)))
    ishape = tuple(data.draw(st.integers(1, n if i != dim % len(shape) else 5))
                   for i, n in enumerate(shape))
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, shape[dim] - 1)))
    assert mg.gradcheck(lambda x: x.gather(dim, Tensor(idx)), [x])


@given(st.data(), shape_and_dim())
def test_index_select_with_repeated_indices(data, shape_dim):
    shape, dim = shape_dim
    x = leaf(data.draw(floats(shape)))
    idx = data.draw(hnp.arrays(np.int64, st.integers(0, 5),
                               elements=st.integers(-shape[dim], shape[dim] - 1)))
    assert mg.gradcheck(lambda x: x.index_select(dim, idx), [x])


@given(st.data(), broadcastable_pair(1, 3))
def test_masked_fill_with_a_broadcast_mask(data, pair):
    sx, sm = pair
    full = np.broadcast_shapes(sx, sm)
    x = leaf(data.draw(floats(full)))
    mask = data.draw(hnp.arrays(np.bool_, sm))
    assert mg.gradcheck(lambda x: x.masked_fill(Tensor(mask), -1e9).softmax(-1), [x])


@given(st.data(), broadcastable_pair(1, 3))
def test_top_level_where_and_tensor_where(data, pair):
    sa, sb = pair
    a, b = leaf(data.draw(floats(sa))), leaf(data.draw(floats(sb)))
    cond = Tensor(data.draw(hnp.arrays(np.bool_, np.broadcast_shapes(sa, sb))))
    assert mg.gradcheck(lambda a, b: mg.where(cond, a, b), [a, b])
    assert mg.gradcheck(lambda a, b: a.where(cond, b), [a, b])


@given(st.data(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
def test_bmm_and_matmul(data, b, n, m, p):
    x, y = leaf(data.draw(floats((b, n, m)))), leaf(data.draw(floats((b, m, p))))
    assert mg.gradcheck(lambda x, y: mg.bmm(x, y), [x, y])
    assert mg.gradcheck(lambda x, y: mg.matmul(x, y[0]) + x.matmul(y), [x, y])
