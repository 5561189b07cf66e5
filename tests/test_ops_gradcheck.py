"""Every primitive passes gradcheck in float64 on hypothesis-drawn shapes (broadcasting
included) and values; plus a negative control: a wrong backward must fail gradcheck."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F
from minigrad import Function, GradcheckError, Tensor
from strategies import (away_from_zero, broadcastable_pair, class_targets, distinct, floats,
                        positives, shape_and_axis, shapes)


def leaf(arr) -> Tensor:
    return Tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


# ---- binary arithmetic with broadcasting --------------------------------------------------

@given(st.data(), broadcastable_pair(),
       st.sampled_from(["add", "sub", "mul", "div", "radd", "rsub", "rmul", "rdiv"]))
def test_binary_broadcast(data, pair, op):
    sa, sb = pair
    a = leaf(data.draw(floats(sa)))
    b = leaf(data.draw(away_from_zero(sb, 0.5) if op == "div" else floats(sb)))
    c = data.draw(st.floats(0.5, 2.0))
    fns = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
        "radd": lambda a, b: c + a + b * 0, "rsub": lambda a, b: c - a - b,
        "rmul": lambda a, b: c * a * b, "rdiv": lambda a, b: c / (b * b + 1) + a,
    }
    assert mg.gradcheck(fns[op], [a, b])


@given(st.data(), shapes(0, 3))
def test_neg(data, shape):
    assert mg.gradcheck(lambda x: -x, [leaf(data.draw(floats(shape)))])


@given(st.data(), shapes(0, 3), st.sampled_from([2.0, 3.0, 0.5, -1.5, 1.0, 0.0]))
def test_pow_scalar_exponent(data, shape, p):
    x = leaf(data.draw(positives(shape)))
    assert mg.gradcheck(lambda x: x ** p, [x])


# ---- unary activations -----------------------------------------------------------------

@given(st.data(), shapes(0, 3), st.sampled_from(["tanh", "sigmoid", "exp", "relu", "log"]))
def test_unary(data, shape, op):
    if op == "relu":
        arr = data.draw(away_from_zero(shape))
    elif op == "log":
        arr = data.draw(positives(shape))
    else:
        arr = data.draw(floats(shape))
    assert mg.gradcheck(lambda x: getattr(x, op)(), [leaf(arr)])


def test_sigmoid_is_stable_for_large_inputs():
    x = Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]), requires_grad=True)
    with np.errstate(over="raise"):
        y = x.sigmoid()
        y.sum().backward()
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad))
    assert y.data[0] == 0.0 and y.data[-1] == 1.0 and y.data[2] == 0.5


# ---- matmul -------------------------------------------------------------------------------

@given(st.data(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["2d", "batched", "broadcast_batch", "vec_left", "vec_right"]))
def test_matmul(data, m, k, n, kind):
    shapes_ = {"2d": ((m, k), (k, n)), "batched": ((2, m, k), (2, k, n)),
               "broadcast_batch": ((2, 1, m, k), (3, k, n)), "vec_left": ((k,), (2, k, n)),
               "vec_right": ((2, m, k), (k,))}[kind]
    a, b = (leaf(data.draw(floats(s))) for s in shapes_)
    assert mg.gradcheck(lambda a, b: a @ b, [a, b])


# ---- reductions ---------------------------------------------------------------------------

@given(st.data(), shape_and_axis(), st.booleans(), st.sampled_from(["sum", "mean"]))
def test_sum_mean(data, shape_axis, keepdims, op):
    shape, axis = shape_axis
    x = leaf(data.draw(floats(shape)))
    assert mg.gradcheck(lambda x: getattr(x, op)(axis=axis, keepdims=keepdims), [x])


@given(st.data(), shape_and_axis(), st.booleans())
def test_max_over_axis(data, shape_axis, keepdims):
    shape, axis = shape_axis
    x = leaf(data.draw(distinct(shape)))
    assert mg.gradcheck(lambda x: x.max(axis=axis, keepdims=keepdims), [x])


@given(st.data(), shape_and_axis(), st.sampled_from(["softmax", "log_softmax"]))
def test_softmax_family(data, shape_axis, op):
    shape, axis = shape_axis
    axis = -1 if axis is None else axis
    x = leaf(data.draw(floats(shape)))
    assert mg.gradcheck(lambda x: getattr(x, op)(axis), [x])


# ---- shape ops ----------------------------------------------------------------------------

@given(st.data(), shapes(1, 3))
def test_reshape_and_transpose(data, shape):
    x = leaf(data.draw(floats(shape)))
    perm = data.draw(st.permutations(range(len(shape))))
    neg_perm = [p - len(shape) if i % 2 else p for i, p in enumerate(perm)]
    assert mg.gradcheck(lambda x: x.reshape(-1, 1) * 1.0, [x])
    assert mg.gradcheck(lambda x: x.transpose(neg_perm) * 1.0, [x])
    assert mg.gradcheck(lambda x: x.T, [x])


@given(st.data(), shapes(2, 3, min_side=2))
def test_getitem_slices_and_repeated_integer_arrays(data, shape):
    x = leaf(data.draw(floats(shape)))
    idx = data.draw(hnp.arrays(np.int64, st.integers(1, 5),
                               elements=st.integers(-shape[0], shape[0] - 1)))
    assert mg.gradcheck(lambda x: x[1:, ::-1], [x])
    assert mg.gradcheck(lambda x: x[idx], [x])
    assert mg.gradcheck(lambda x: x[Tensor(idx), 0], [x])
    mask = data.draw(hnp.arrays(np.bool_, shape))
    assert mg.gradcheck(lambda x: x[mask], [x])


@given(st.data(), shapes(1, 3), st.integers(1, 3))
def test_concat_stack_split(data, shape, n):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    xs = [leaf(data.draw(floats(shape))) for _ in range(n)]
    assert mg.gradcheck(lambda *xs: mg.concat(xs, axis=axis), xs)
    assert mg.gradcheck(lambda *xs: mg.stack(xs, axis=axis), xs)
    np.testing.assert_array_equal(mg.stack(xs, axis=axis).data,
                                  np.stack([x.data for x in xs], axis=axis))
    whole = mg.concat(xs, axis=axis).detach()
    whole.requires_grad = True
    sizes = [shape[axis]] * n
    # only some pieces used: the unused ones must get a zero gradient
    assert mg.gradcheck(lambda w: mg.split(w, sizes, axis=axis)[0] * 2.0, [whole])
    assert mg.gradcheck(lambda w: mg.split(w, shape[axis], axis=axis), [whole])


# ---- nn primitives ------------------------------------------------------------------------

@given(st.data(), broadcastable_pair(1, 3))
def test_where(data, pair):
    sa, sb = pair
    a, b = leaf(data.draw(floats(sa))), leaf(data.draw(floats(sb)))
    cond = data.draw(hnp.arrays(np.bool_, np.broadcast_shapes(sa, sb)))
    assert mg.gradcheck(lambda a, b: F.where(Tensor(cond), a, b), [a, b])
    assert mg.gradcheck(lambda a: F.where(cond, a, 0.0), [a])


@given(st.data(), shapes(1, 3), st.sampled_from([0.0, 0.3, 0.7, 1.0]), st.integers(0, 99))
def test_dropout(data, shape, p, seed):
    x = leaf(data.draw(floats(shape)))
    assert mg.gradcheck(lambda x: F.dropout(x, p, rng=seed), [x])


@given(st.data(), st.integers(1, 5), st.integers(1, 3), shapes(1, 2))
def test_embedding_with_repeated_indices(data, num, dim, idx_shape):
    w = leaf(data.draw(floats((num, dim))))
    idx = data.draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(0, num - 1)))
    # an integer index Tensor among gradcheck's inputs is passed through untouched
    assert mg.gradcheck(lambda i, w: F.embedding(i, w), [Tensor(idx), w])


# ---- losses -------------------------------------------------------------------------------

@given(st.data(), shapes(1, 2, max_side=3), st.integers(1, 4),
       st.sampled_from(["mean", "sum", "none"]), st.sampled_from([-100, 0]))
def test_cross_entropy(data, lead, n_classes, reduction, ignore_index):
    x = leaf(data.draw(floats(lead + (n_classes,))))
    t = data.draw(class_targets(lead, n_classes, ignore_index))
    if reduction == "mean" and np.all(t == ignore_index):
        t.flat[0] = (ignore_index + 1) % n_classes
    assert mg.gradcheck(lambda x: F.cross_entropy(x, t, ignore_index, reduction), [x])


@given(st.data(), shapes(1, 3), st.sampled_from(["mean", "sum", "none"]))
def test_mse_loss(data, shape, reduction):
    a, b = leaf(data.draw(floats(shape))), leaf(data.draw(floats(shape)))
    assert mg.gradcheck(lambda a, b: F.mse_loss(a, b, reduction), [a, b])


@given(st.data(), shapes(1, 3), st.sampled_from(["mean", "sum", "none"]), st.booleans())
def test_bce_with_logits(data, shape, reduction, weighted):
    x = leaf(data.draw(floats(shape, -5, 5)))
    y = leaf(data.draw(floats(shape, 0, 1)))
    pw = leaf(data.draw(positives(shape[-1:]))) if weighted else None
    inputs = [x, y] + ([pw] if weighted else [])
    assert mg.gradcheck(lambda x, y, *pw: F.binary_cross_entropy_with_logits(
        x, y, reduction, pos_weight=pw[0] if pw else None), inputs)


# ---- gradcheck itself ---------------------------------------------------------------------

class WrongSquare(Function):
    """x**2 whose backward forgets the factor 2: a deliberate bug."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


class ScaledSquare(Function):
    """A correct user-defined Function with a non-tensor positional argument and an option."""

    @staticmethod
    def forward(ctx, x, scale, *, offset=0.0):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x * x + offset

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * ctx.scale * x * grad, None


def test_negative_control_wrong_backward_fails_gradcheck():
    x = leaf([[0.5, -1.0, 2.0]])
    y = leaf([1.0])
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(1, 3\)\) disagrees at element "
                                             r"\(0, 0\): backward gives .*central differences"):
        mg.gradcheck(lambda y, x: WrongSquare.apply(x) + y, [y, x])
    assert mg.gradcheck(lambda x: WrongSquare.apply(x), [x], raise_exception=False) is False


def test_gradcheck_user_function_and_integer_inputs():
    x = leaf([[0.5, -1.0], [2.0, 0.1]])
    assert mg.gradcheck(lambda x: ScaledSquare.apply(x, 3.0, offset=1.0), [x])
    idx = Tensor(np.array([1, 1, 0]))
    assert mg.gradcheck(lambda x, i: ScaledSquare.apply(x[i], 0.5), [x, idx])
    # float32 inputs are checked in float64 and the caller's tensors are left untouched
    x32 = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    assert mg.gradcheck(lambda x: ScaledSquare.apply(x, 2.0), [x32])
    assert x32.grad is None and x32.dtype == np.float32


def test_gradcheck_argument_errors():
    with pytest.raises(ValueError, match="no input has requires_grad"):
        mg.gradcheck(lambda x: x * 2, [Tensor(np.ones(2))])
