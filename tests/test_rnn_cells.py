"""The primitive-graph cells (RNNCell, LSTMCell with and without peepholes, GRUCell):
gradcheck in float64, agreement with an independent numpy evaluation of the lecture formulas,
parameter names/shapes/init, seeding and argument errors."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import Tensor
from minigrad.nn import GRUCell, LSTMCell, RNNCell
from minigrad.nn import rnn_cells
from helpers import swapped

CELLS = {
    "rnn_tanh": lambda i, h, **kw: RNNCell(i, h, nonlinearity="tanh", **kw),
    "rnn_relu": lambda i, h, **kw: RNNCell(i, h, nonlinearity="relu", **kw),
    "lstm": lambda i, h, **kw: LSTMCell(i, h, **kw),
    "lstm_peephole": lambda i, h, **kw: LSTMCell(i, h, peephole=True, **kw),
    "gru": lambda i, h, **kw: GRUCell(i, h, **kw),
}


# ---- an independent numpy evaluation of the lecture formulas --------------------------------
def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def numpy_cell(kind: str, p: dict, x: np.ndarray, h: np.ndarray, c: np.ndarray | None):
    """Each gate computed separately with its own weight rows (no fused gate matrix)."""
    H = h.shape[1]
    W, U = p["weight_ih"], p["weight_hh"]
    b = p.get("bias_ih", np.zeros(W.shape[0]))
    bh = p.get("bias_hh", np.zeros(W.shape[0]))

    def gate(k, with_h=True):
        rows = slice(k * H, (k + 1) * H)
        return x @ W[rows].T + b[rows] + (h @ U[rows].T + bh[rows] if with_h else 0.0)

    if kind.startswith("rnn"):
        a = gate(0)
        return np.tanh(a) if kind == "rnn_tanh" else np.maximum(a, 0.0)
    if kind.startswith("lstm"):
        P = p.get("weight_peephole", np.zeros((3, H)))
        i = _sig(gate(0) + P[0] * c)
        f = _sig(gate(1) + P[1] * c)
        g = np.tanh(gate(2))
        c_new = f * c + i * g
        o = _sig(gate(3) + P[2] * c_new)
        return o * np.tanh(c_new), c_new
    r = _sig(gate(0))
    z = _sig(gate(1))
    n = np.tanh(x @ W[2 * H:].T + b[2 * H:] + r * (h @ U[2 * H:].T + bh[2 * H:]))
    return (1 - z) * n + z * h


# ---- gradcheck -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(CELLS))
@given(batch=st.integers(1, 3), isz=st.integers(1, 3), hsz=st.integers(1, 3),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_cell_gradcheck_float64(kind, batch, isz, hsz, bias, seed):
    rng = np.random.default_rng(seed)
    cell = CELLS[kind](isz, hsz, bias=bias, dtype=np.float64, rng=rng)
    names = [n for n, _ in cell.named_parameters()]
    params = [Tensor(p.data.copy(), requires_grad=True) for _, p in cell.named_parameters()]
    x = Tensor(rng.standard_normal((batch, isz)), requires_grad=True)
    h = Tensor(rng.standard_normal((batch, hsz)) * 0.5, requires_grad=True)
    c = Tensor(rng.standard_normal((batch, hsz)), requires_grad=True)
    lstm = kind.startswith("lstm")

    def fn(x, h, c, *ps):
        with swapped(cell, names, ps):
            return cell(x, (h, c)) if lstm else cell(x, h)

    assert mg.gradcheck(fn, [x, h, c, *params], atol=1e-6, rtol=1e-4)


def test_gradcheck_catches_a_wrong_formula():
    """Negative control: a cell whose graph differs from the reference formula disagrees."""
    rng = np.random.default_rng(1)
    cell = LSTMCell(2, 3, dtype=np.float64, rng=rng)
    x, h, c = (rng.standard_normal((2, k)) for k in (2, 3, 3))
    p = {n: t.data for n, t in cell.named_parameters()}
    good_h, _ = numpy_cell("lstm", p, x, h, c)
    bad = dict(p, weight_hh=p["weight_hh"][::-1].copy())  # gate rows in the wrong order
    bad_h, _ = numpy_cell("lstm", bad, x, h, c)
    out, _ = cell(Tensor(x), (Tensor(h), Tensor(c)))
    np.testing.assert_allclose(out.data, good_h, rtol=1e-12, atol=1e-12)
    assert not np.allclose(out.data, bad_h)


# ---- forward against numpy -------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@given(batch=st.integers(1, 4), isz=st.integers(1, 5), hsz=st.integers(1, 5),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_cell_matches_numpy_formulas(kind, dtype, tol, batch, isz, hsz, bias, seed):
    rng = np.random.default_rng(seed)
    cell = CELLS[kind](isz, hsz, bias=bias, dtype=dtype, rng=rng)
    p = {n: t.data.astype(np.float64) for n, t in cell.named_parameters()}
    x = rng.standard_normal((batch, isz)).astype(dtype)
    h = rng.standard_normal((batch, hsz)).astype(dtype)
    c = rng.standard_normal((batch, hsz)).astype(dtype)
    if kind.startswith("lstm"):
        got_h, got_c = cell(Tensor(x), (Tensor(h), Tensor(c)))
        want_h, want_c = numpy_cell(kind, p, x.astype(np.float64), h.astype(np.float64),
                                    c.astype(np.float64))
        np.testing.assert_allclose(got_c.data, want_c, rtol=tol, atol=tol)
    else:
        got_h = cell(Tensor(x), Tensor(h))
        want_h = numpy_cell(kind, p, x.astype(np.float64), h.astype(np.float64), None)
    assert got_h.dtype == dtype
    np.testing.assert_allclose(got_h.data, want_h, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", list(CELLS))
def test_missing_state_means_zeros_and_unbatched_input(kind):
    rng = np.random.default_rng(3)
    cell = CELLS[kind](3, 2, dtype=np.float64, rng=rng)
    x = rng.standard_normal((4, 3))
    zeros = np.zeros((4, 2))
    lstm = kind.startswith("lstm")
    got = cell(Tensor(x))
    want = cell(Tensor(x), (Tensor(zeros), Tensor(zeros)) if lstm else Tensor(zeros))
    for g, w in zip(got if lstm else [got], want if lstm else [want]):
        np.testing.assert_array_equal(g.data, w.data)
        assert g.shape == (4, 2)
    single = cell(Tensor(x[1]))
    h1 = single[0] if lstm else single
    assert h1.shape == (2,)
    np.testing.assert_allclose(h1.data, (got[0] if lstm else got).data[1], rtol=1e-14)


# ---- parameters, init, seeding ---------------------------------------------------------------
@pytest.mark.parametrize("kind,gates", [("rnn_tanh", 1), ("lstm", 4), ("lstm_peephole", 4),
                                        ("gru", 3)])
def test_parameter_names_shapes_and_init(kind, gates):
    cell = CELLS[kind](5, 7, rng=0)
    shapes = {n: p.shape for n, p in cell.named_parameters()}
    want = {"weight_ih": (gates * 7, 5), "weight_hh": (gates * 7, 7),
            "bias_ih": (gates * 7,), "bias_hh": (gates * 7,)}
    if kind == "lstm_peephole":
        want["weight_peephole"] = (3, 7)
    assert shapes == want
    bound = 1 / np.sqrt(7)
    for _, p in cell.named_parameters():
        assert p.dtype == np.float32 and p.requires_grad
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.5 * bound
    no_bias = CELLS[kind](5, 7, bias=False)
    assert no_bias.bias_ih is None and "bias_ih" not in dict(no_bias.named_parameters())


def test_seeding_by_rng_and_manual_seed():
    a, b = GRUCell(3, 4, rng=11), GRUCell(3, 4, rng=11)
    np.testing.assert_array_equal(a.weight_hh.data, b.weight_hh.data)
    assert not np.array_equal(GRUCell(3, 4, rng=12).weight_hh.data, a.weight_hh.data)
    mg.manual_seed(5)
    c = LSTMCell(3, 4)
    mg.manual_seed(5)
    d = LSTMCell(3, 4)
    np.testing.assert_array_equal(c.weight_ih.data, d.weight_ih.data)
    assert not hasattr(rnn_cells, "manual_seed")  # one public name: minigrad.manual_seed


def test_cell_weights_round_trip_through_state_dict():
    src, dst = LSTMCell(3, 4, rng=1), LSTMCell(3, 4, rng=2)
    dst.load_state_dict(src.state_dict())
    x = Tensor(np.ones((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(src(x)[0].data, dst(x)[0].data)


# ---- errors ---------------------------------------------------------------------------------
def test_cell_errors_name_the_cell_and_shapes():
    cell = LSTMCell(3, 4)
    x = Tensor(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"LSTMCell.*\(batch, 3\).*\(2, 5\)"):
        cell(Tensor(np.zeros((2, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"LSTMCell.*\(2, 3, 1\)"):
        cell(Tensor(np.zeros((2, 3, 1), dtype=np.float32)))
    bad_h = Tensor(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"LSTMCell: h has shape \(3, 4\), expected \(2, 4\)"):
        cell(x, (bad_h, bad_h))
    with pytest.raises(TypeError, match=r"GRUCell: input dtype float64.*float32"):
        GRUCell(3, 4)(Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="RNNCell: nonlinearity"):
        RNNCell(3, 4, nonlinearity="sigmoid")
