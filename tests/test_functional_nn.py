"""layer_norm, gelu, normalize, pad, nll_loss and one_hot: gradcheck in float64 on
hypothesis-drawn shapes and values, values and gradients equal to PyTorch's (float64), and the
errors for bad input. Also F.embedding, F.linear, F.relu, F.sigmoid, F.tanh against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import Tensor
from strategies import away_from_zero, class_targets, floats, shapes


def leaf(arr) -> Tensor:
    return Tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


# ---- gradcheck under hypothesis ----------------------------------------------------------

@given(st.data(), shapes(1, 3), st.integers(1, 2), st.booleans(), st.booleans())
def test_layer_norm_gradcheck(data, shape, k, affine, with_bias):
    k = min(k, len(shape))
    norm_shape = shape[len(shape) - k:]
    # spread the values so the variance is not tiny next to eps
    x = leaf(data.draw(floats(shape)) + np.arange(np.prod(shape)).reshape(shape) * 0.3)
    w = leaf(data.draw(floats(norm_shape))) if affine else None
    b = leaf(data.draw(floats(norm_shape))) if affine and with_bias else None
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts[1:])
        ww = next(it) if w is not None else None
        bb = next(it) if b is not None else None
        return F.layer_norm(ts[0], norm_shape, ww, bb, eps=1e-3)
    assert mg.gradcheck(fn, inputs)


@given(st.data(), shapes(0, 3), st.sampled_from(["none", "tanh"]))
def test_gelu_gradcheck(data, shape, approximate):
    x = leaf(data.draw(floats(shape, -4.0, 4.0)))
    assert mg.gradcheck(lambda t: F.gelu(t, approximate=approximate), [x])


@given(st.data(), shapes(1, 3), st.sampled_from([1.0, 2.0, 3.0, 1.5]))
def test_normalize_gradcheck(data, shape, p):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    # |x| >= 0.1 keeps |x|^p smooth (p = 1 has a kink at 0)
    x = leaf(data.draw(away_from_zero(shape)))
    assert mg.gradcheck(lambda t: F.normalize(t, p=p, dim=dim), [x])


@given(st.data(), shapes(1, 3))
def test_pad_gradcheck(data, shape):
    pairs = data.draw(st.integers(1, len(shape)))
    pad = []
    for k in range(pairs):
        size = shape[len(shape) - 1 - k]
        lo = data.draw(st.integers(-(size - 1) // 2 if size > 1 else 0, 2))
        hi = data.draw(st.integers(-(size - 1 - max(0, -lo)) if size > 1 else 0, 2))
        pad += [lo, hi]
    x = leaf(data.draw(floats(shape)))
    assert mg.gradcheck(lambda t: F.pad(t, tuple(pad), value=0.7), [x])


@given(st.data(), shapes(1, 2), st.integers(2, 4), st.sampled_from(["mean", "sum", "none"]),
       st.booleans())
def test_nll_loss_gradcheck(data, lead, n_classes, reduction, weighted):
    x = leaf(data.draw(floats(lead + (n_classes,))))
    t = data.draw(class_targets(lead, n_classes))
    if reduction == "mean" and (t == -100).all():
        t.flat[0] = 0
    w = data.draw(floats((n_classes,), 0.2, 2.0)) if weighted else None
    assert mg.gradcheck(lambda a: F.nll_loss(a, t, weight=w, reduction=reduction), [x])
    assert mg.gradcheck(lambda a: F.cross_entropy(a, t, weight=w, reduction=reduction), [x])


def test_gradcheck_catches_a_wrong_layer_norm_rule(monkeypatch):
    """Negative control: the mean(g * xhat) term left out of the backward must fail."""
    from minigrad.ops import layer_ops

    def wrong(ctx, grad):
        xhat, rstd, _ = ctx.saved_tensors
        return rstd * (grad - grad.mean(axis=ctx.axes, keepdims=True)), None, None
    monkeypatch.setattr(layer_ops.LayerNorm, "backward", staticmethod(wrong))
    x = leaf(np.random.default_rng(0).standard_normal((3, 4)))
    assert not mg.gradcheck(lambda t: F.layer_norm(t, 4), [x], raise_exception=False)


# ---- forward facts that need no torch ---------------------------------------------------------

def test_layer_norm_rows_have_zero_mean_unit_variance():
    x = Tensor(np.random.default_rng(1).standard_normal((5, 7)) * 3 + 2)
    y = F.layer_norm(x, 7).data
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(-1), 1, rtol=1e-3)


def test_nll_of_log_softmax_equals_cross_entropy():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((2, 3, 5)), rng.integers(0, 5, (2, 3))
    a, b = leaf(x), leaf(x)
    F.nll_loss(F.log_softmax(a, -1), t).backward()
    F.cross_entropy(b, t).backward()
    np.testing.assert_allclose(a.grad, b.grad, atol=1e-12)


def test_one_hot_is_int64_without_grad():
    out = F.one_hot(Tensor([[2, 0], [1, 2]]))
    assert out.dtype == np.int64 and not out.requires_grad and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.data.argmax(-1), [[2, 0], [1, 2]])
    assert F.one_hot(np.array([0, 1]), num_classes=4).shape == (2, 4)


@pytest.mark.parametrize("call, match", [
    (lambda: F.one_hot(Tensor([0.5])), "integers"),
    (lambda: F.one_hot(Tensor([0, 3]), num_classes=3), r"\[0, 3\)"),
    (lambda: F.pad(Tensor(np.zeros((2, 3))), (1, 2, 3)), "pairs"),
    (lambda: F.pad(Tensor(np.zeros((2, 3))), (-2, -2)), "negative size"),
    (lambda: F.pad(Tensor(np.zeros((2, 3))), (1, 1), mode="reflect"), "constant"),
    (lambda: F.layer_norm(Tensor(np.zeros((2, 3))), 4), "trailing"),
    (lambda: F.layer_norm(Tensor(np.zeros((2, 3))), 3, Tensor(np.ones(4))), "weight shape"),
    (lambda: F.nll_loss(Tensor(np.zeros((2, 3))), np.array([0, 3])), "out of range"),
    (lambda: F.nll_loss(Tensor(np.zeros((2, 3))), np.array([0, 1, 2])), "target shape"),
    (lambda: F.nll_loss(Tensor(np.zeros((2, 3))), np.array([0, 1]), weight=np.ones(2)),
     "one number per class"),
    (lambda: F.binary_cross_entropy_with_logits(Tensor(np.zeros((2, 3))), np.zeros((2, 3)),
                                                weight=np.ones(2)), "broadcast"),
    (lambda: F.gelu(Tensor([1.0]), approximate="fast"), "approximate"),
    (lambda: F.normalize(Tensor(np.ones((2, 3))), dim=2), "out of range"),
    (lambda: F.normalize(Tensor(np.ones((2, 3))), dim=1, axis=1), "same argument"),
])
def test_bad_input_errors(call, match):
    with pytest.raises((ValueError, TypeError, NotImplementedError), match=match):
        call()


# ---- against PyTorch ---------------------------------------------------------------------

def _torch_compare(mg_fn, torch_fn, arrays, rtol=1e-10, atol=1e-12):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    mx = [leaf(a) for a in arrays]
    tx = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    mo, to = mg_fn(*mx), torch_fn(*tx)
    np.testing.assert_allclose(mo.data, to.detach().numpy(), rtol=rtol, atol=atol)
    w = rng.standard_normal(mo.shape)
    (mo * Tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for k, (m, t) in enumerate(zip(mx, tx)):
        tg = np.zeros(m.shape) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(m.grad, tg, rtol=1e-9, atol=1e-12, err_msg=f"input {k}")


RNG = np.random.default_rng(99)
X = RNG.standard_normal((2, 3, 5))
X_ZERO_ROW = X.copy()
X_ZERO_ROW[1, :, 2] = 0.0
T = RNG.integers(0, 5, (2, 3))
T[0, 1] = -100
T_OTHER = T.copy()
T_OTHER[0, 1] = 4
CLASS_W = RNG.random(5) + 0.2
PROBS = RNG.random((2, 3, 5))
ELEM_W = RNG.random((3, 5))
IDS = RNG.integers(0, 6, (2, 3))


def _cases():
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    tt, tto, tids = torch.tensor(T), torch.tensor(T_OTHER), torch.tensor(IDS)
    return {
        "layer_norm": (lambda x, w, b: F.layer_norm(x, 5, w, b),
                       lambda x, w, b: TF.layer_norm(x, (5,), w, b), [X, X[0, 0], X[1, 1]]),
        "layer_norm_2d": (lambda x, w: F.layer_norm(x, (3, 5), w, eps=1e-3),
                          lambda x, w: TF.layer_norm(x, (3, 5), w, eps=1e-3), [X, X[0]]),
        "layer_norm_plain": (lambda x: F.layer_norm(x, (5,)), lambda x: TF.layer_norm(x, (5,)),
                             [X]),
        "gelu": (F.gelu, TF.gelu, [X * 2]),
        "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                      lambda x: TF.gelu(x, approximate="tanh"), [X * 2]),
        "normalize_default_dim1": (F.normalize, TF.normalize, [X]),
        "normalize_last_p3": (lambda x: F.normalize(x, p=3, axis=-1),
                              lambda x: TF.normalize(x, p=3, dim=-1), [X]),
        "normalize_zero_slice": (lambda x: F.normalize(x, dim=1),
                                 lambda x: TF.normalize(x, dim=1), [X_ZERO_ROW]),
        "pad_last": (lambda x: F.pad(x, (1, 2)), lambda x: TF.pad(x, (1, 2)), [X]),
        "pad_three_axes_crop": (lambda x: F.pad(x, (2, -1, 0, 1, -1, 3), value=-1.5),
                                lambda x: TF.pad(x, (2, -1, 0, 1, -1, 3), value=-1.5), [X]),
        "nll_mean_ignore": (lambda x: F.nll_loss(x, T),
                            lambda x: TF.nll_loss(x.permute(0, 2, 1), tt), [X]),
        "nll_sum": (lambda x: F.nll_loss(x, T_OTHER, reduction="sum"),
                    lambda x: TF.nll_loss(x.permute(0, 2, 1), tto, reduction="sum"), [X]),
        "nll_none_ignore3": (lambda x: F.nll_loss(x, T_OTHER, ignore_index=3, reduction="none"),
                             lambda x: TF.nll_loss(x.permute(0, 2, 1), tto, ignore_index=3,
                                                   reduction="none"), [X]),
        "nll_2d": (lambda x: F.nll_loss(x, T_OTHER[0]),
                   lambda x: TF.nll_loss(x, tto[0]), [X[0]]),
        "nll_weight_mean": (lambda x: F.nll_loss(x, T, weight=CLASS_W),
                            lambda x: TF.nll_loss(x.permute(0, 2, 1), tt,
                                                  weight=torch.tensor(CLASS_W)), [X]),
        "nll_weight_none": (lambda x: F.nll_loss(x, T, weight=CLASS_W, reduction="none"),
                            lambda x: TF.nll_loss(x.permute(0, 2, 1), tt, reduction="none",
                                                  weight=torch.tensor(CLASS_W)), [X]),
        "cross_entropy_weight": (lambda x: F.cross_entropy(x, T, weight=CLASS_W),
                                 lambda x: TF.cross_entropy(x.permute(0, 2, 1), tt,
                                                            weight=torch.tensor(CLASS_W)), [X]),
        "bce_weight_mean": (lambda x: F.binary_cross_entropy_with_logits(x, PROBS,
                                                                         weight=ELEM_W),
                            lambda x: TF.binary_cross_entropy_with_logits(
                                x, torch.tensor(PROBS), weight=torch.tensor(ELEM_W)), [X]),
        "bce_weight_sum": (lambda x: F.binary_cross_entropy_with_logits(
                               x, PROBS, weight=ELEM_W, reduction="sum"),
                           lambda x: TF.binary_cross_entropy_with_logits(
                               x, torch.tensor(PROBS), weight=torch.tensor(ELEM_W),
                               reduction="sum"), [X]),
        "embedding": (lambda w: F.embedding(IDS, w, padding_idx=2),
                      lambda w: TF.embedding(tids, w, padding_idx=2),
                      [RNG.standard_normal((6, 4))]),
        "linear": (F.linear, TF.linear, [X, RNG.standard_normal((4, 5)), RNG.standard_normal(4)]),
        "linear_no_bias": (F.linear, TF.linear, [X, RNG.standard_normal((4, 5))]),
        "relu": (F.relu, TF.relu, [X]),
        "sigmoid": (F.sigmoid, torch.sigmoid, [X * 3]),
        "tanh": (F.tanh, torch.tanh, [X * 3]),
    }


CASE_NAMES = ["layer_norm", "layer_norm_2d", "layer_norm_plain", "gelu", "gelu_tanh",
              "normalize_default_dim1", "normalize_last_p3", "normalize_zero_slice", "pad_last",
              "pad_three_axes_crop", "nll_mean_ignore", "nll_sum", "nll_none_ignore3", "nll_2d",
              "nll_weight_mean", "nll_weight_none", "cross_entropy_weight", "bce_weight_mean",
              "bce_weight_sum",
              "embedding", "linear", "linear_no_bias", "relu", "sigmoid", "tanh"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_matches_torch(name):
    mg_fn, torch_fn, arrays = _cases()[name]
    _torch_compare(mg_fn, torch_fn, arrays)


def test_one_hot_matches_torch():
    torch = pytest.importorskip("torch")
    ids = RNG.integers(0, 7, (3, 4))
    np.testing.assert_array_equal(F.one_hot(ids).data,
                                  torch.nn.functional.one_hot(torch.tensor(ids)).numpy())
    np.testing.assert_array_equal(F.one_hot(ids, 9).data,
                                  torch.nn.functional.one_hot(torch.tensor(ids), 9).numpy())


def test_float32_layer_norm_and_gelu_keep_dtype():
    x = Tensor(X.astype(np.float32), requires_grad=True)
    for y in (F.layer_norm(x, 5), F.gelu(x), F.normalize(x), F.pad(x, (1, 1))):
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32
        x.grad = None
