"""The primitive ops' fast paths (minigrad/ops/) give the same numbers as the rule they shortcut:
batched matmul backward without broadcasting (a contraction of one is a broadcast product),
Mean as a sum divided by the count (what np.mean does for float32 / float64), and x ** 2 and
x ** 0.5 as a product and a square root (np.power's bits)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor


def _grads(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ta = Tensor(a, dtype=a.dtype, requires_grad=True)
    tb = Tensor(b, dtype=b.dtype, requires_grad=True)
    (ta @ tb).backward(Tensor(g, dtype=g.dtype))
    return ta.grad, tb.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [
    ((4, 5, 6), (4, 6, 1)),       # attention scores: enc @ h (the grad of A is an outer product)
    ((4, 1, 5), (4, 5, 6)),       # attention context: weights @ enc (the grad of B likewise)
    ((2, 3, 4, 5), (2, 3, 5, 2)),  # two batch dims, no contraction of one
    ((3, 1, 1), (3, 1, 1)),
])
def test_batched_matmul_backward_matches_einsum(shapes, dtype):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    g = rng.standard_normal((a @ b).shape).astype(dtype)
    da, db = _grads(a, b, g)
    ref_da = np.einsum("...mn,...kn->...mk", g, b)   # dC B^T
    ref_db = np.einsum("...km,...kn->...mn", a, g)   # A^T dC
    assert da.dtype == db.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(da, ref_da, **tol)
    np.testing.assert_allclose(db, ref_db, **tol)
    if shapes[1][-1] == 1:           # one product per entry: exactly the broadcast product
        assert np.array_equal(da, g * np.swapaxes(b, -1, -2))
    if shapes[0][-2] == 1:
        assert np.array_equal(db, np.swapaxes(a, -1, -2) * g)


def test_batched_matmul_backward_agrees_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    enc = rng.standard_normal((3, 7, 8))
    h = rng.standard_normal((3, 8, 1))
    w = rng.standard_normal((3, 1, 7))
    te, th, tw = (Tensor(x, dtype=np.float64, requires_grad=True) for x in (enc, h, w))
    ((te @ th).sum() * 2 + ((tw @ te) ** 2).sum()).backward()
    qe, qh, qw = (torch.tensor(x, requires_grad=True) for x in (enc, h, w))
    ((qe @ qh).sum() * 2 + ((qw @ qe) ** 2).sum()).backward()
    for mine, theirs in ((te, qe), (th, qh), (tw, qw)):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis, keepdims", [
    ((32, 256), -1, True), ((32, 256), None, False), ((4, 5, 6), (0, 2), False),
    ((4, 5, 6), 1, True), ((7,), 0, False), ((), None, False), ((0, 3), 0, False),
    ((3, 1), -1, True), ((3, 1), (), False),
])
def test_mean_is_bitwise_np_mean(shape, axis, keepdims, dtype):
    x = (np.random.default_rng(2).standard_normal(shape) * 100).astype(dtype)
    before = x.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # the mean of nothing is nan, with a warning
        t = mg.Tensor(x, dtype=dtype)
        got = t.mean(axis=axis, keepdims=keepdims).data
        ref = np.asarray(x.mean(axis=axis, keepdims=keepdims))
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.array_equal(got, ref, equal_nan=True)
    assert np.array_equal(t.data, before)  # the sum is divided in place, never the input


def test_mean_of_float16_keeps_np_mean_accumulation():
    x = np.full(4096, 0.1, dtype=np.float16)
    got = mg.Tensor(x, dtype=np.float16).mean().data
    assert got.dtype == np.float16 and got == x.mean()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_div_backward_for_the_divisor_is_bitwise_the_textbook_formula(dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 5)).astype(dtype)
    a[0, :2] = 0.0                                   # signed zeros take the same sign
    b = (rng.uniform(0.5, 2.0, (6, 1)) * rng.choice([-1, 1], (6, 1))).astype(dtype)
    g = rng.standard_normal((6, 5)).astype(dtype)
    ta = Tensor(a, dtype=dtype, requires_grad=True)
    tb = Tensor(b, dtype=dtype, requires_grad=True)
    (ta / tb).backward(Tensor(g, dtype=dtype))
    ref = (-g * a / (b * b)).sum(axis=1, keepdims=True)   # d(a/b)/db = -a/b^2, summed back
    assert tb.grad.dtype == dtype and np.array_equal(tb.grad, ref)
    assert np.array_equal(ta.grad, g / b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("exponent", [2, 2.0, 0.5])
def test_square_and_square_root_are_bitwise_np_power(exponent, dtype):
    rng = np.random.default_rng(4)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(4000) * 10.0 ** rng.integers(-40, 40, 4000)).astype(dtype)
    x[:10] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-310, 3e38, -3e38, -1.0]
    g = rng.standard_normal(x.shape).astype(dtype)
    t = Tensor(x, dtype=dtype, requires_grad=True)
    with np.errstate(all="ignore"):
        y = t ** exponent
        y.backward(Tensor(g, dtype=dtype))
        want = np.power(x, dtype(exponent))
        want_grad = g * dtype(exponent) * np.power(x, dtype(exponent - 1))
    for got, ref in ((y.data, want), (t.grad, want_grad)):
        assert got.dtype == dtype
        nan = np.isnan(ref)
        assert np.array_equal(np.isnan(got), nan)
        bits = f"u{np.dtype(dtype).itemsize}"
        assert np.array_equal(got[~nan].view(bits), ref[~nan].view(bits))


def test_integer_powers_as_torch():
    x = np.arange(-3, 4)
    square = (Tensor(x) ** 2).data
    assert square.dtype == np.int64 and np.array_equal(square, x * x)
    root = (Tensor(np.arange(5)) ** 0.5).data      # a fractional power: float32, not x ** 0
    assert root.dtype == np.float32
    np.testing.assert_array_equal(root, np.sqrt(np.arange(5, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"pow: an integer tensor \(shape \(7,\)\) to a negative"):
        Tensor(x) ** -1


def _layer_norm_numpy(x, w, b, nd, eps, grad):
    """Layer norm and its gradients in plain numpy operators (np.mean, - * /): the textbook
    lines the op computes through its kernels."""
    axes, lead = tuple(range(x.ndim - nd, x.ndim)), tuple(range(x.ndim - nd))
    mu = x.mean(axis=axes, keepdims=True)
    centred = x - mu
    var = (centred * centred).mean(axis=axes, keepdims=True)
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat = centred * rstd
    y = xhat if w is None else xhat * w
    y = y if b is None else y + b
    g = grad if w is None else grad * w
    dx = rstd * (g - g.mean(axis=axes, keepdims=True)
                 - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    dw = None if w is None else (grad * xhat).sum(axis=lead)
    db = None if b is None else grad.sum(axis=lead)
    return y, dx, dw, db


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, nd", [((32, 256), 1), ((4, 5, 6), 1), ((4, 5, 6), 2),
                                       ((3, 1), 1), ((7,), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_is_bitwise_the_numpy_formula(shape, nd, affine, dtype):
    import minigrad.functional as F
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w = rng.standard_normal(shape[len(shape) - nd:]).astype(dtype) if affine else None
    b = rng.standard_normal(shape[len(shape) - nd:]).astype(dtype) if affine else None
    grad = rng.standard_normal(shape).astype(dtype)
    tx = Tensor(x, dtype=dtype, requires_grad=True)
    tw = None if w is None else Tensor(w, dtype=dtype, requires_grad=True)
    tb = None if b is None else Tensor(b, dtype=dtype, requires_grad=True)
    y = F.layer_norm(tx, shape[len(shape) - nd:], tw, tb, eps=1e-5)
    y.backward(Tensor(grad, dtype=dtype))
    want = _layer_norm_numpy(x, w, b, nd, 1e-5, grad)
    got = (y.data, tx.grad, None if tw is None else tw.grad, None if tb is None else tb.grad)
    for g, r in zip(got, want):
        if r is None:
            assert g is None
        else:
            assert g.dtype == dtype and g.shape == r.shape and np.array_equal(g, r)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", [((32, 20), -1), ((32, 20), 0), ((4, 5, 6), 1),
                                         ((4, 5, 6), -1), ((7,), 0), ((3, 1), -1)])
def test_softmax_and_log_softmax_are_bitwise_the_numpy_formula(shape, axis, dtype):
    import minigrad.functional as F
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    z = x - x.max(axis=axis, keepdims=True)
    y = np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)
    log_y = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    want = {"softmax": (y, y * (grad - (grad * y).sum(axis=axis, keepdims=True))),
            "log_softmax": (log_y, grad - np.exp(log_y) * grad.sum(axis=axis, keepdims=True))}
    for name, (out, dx) in want.items():
        t = Tensor(x, dtype=dtype, requires_grad=True)
        got = getattr(F, name)(t, axis=axis)
        got.backward(Tensor(grad, dtype=dtype))
        for g, r in ((got.data, out), (t.grad, dx)):
            assert g.dtype == dtype and g.shape == r.shape and np.array_equal(g, r), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis, keepdims", [
    ((32, 256), -1, True), ((32, 256), None, False), ((4, 5, 6), (0, 2), False),
    ((4, 5, 6), 1, True), ((7,), 0, False), ((3, 1), -1, True)])
def test_mean_backward_is_bitwise_the_gradient_divided_by_the_count(shape, axis, keepdims, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    t = Tensor(x, dtype=dtype, requires_grad=True)
    m = t.mean(axis=axis, keepdims=keepdims)
    g = (rng.standard_normal(m.shape) * 3).astype(dtype)
    m.backward(Tensor(g, dtype=dtype))
    count = x.size // max(m.data.size, 1)
    kept = x.mean(axis=axis, keepdims=True).shape
    want = np.broadcast_to(np.divide(g.reshape(kept), count, dtype=dtype), shape)
    assert t.grad.dtype == dtype and np.array_equal(t.grad, want)
