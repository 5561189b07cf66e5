"""The fused path and the primitive graph compute the same thing: outputs, final states,
recorded hidden-state gradients, and gradients of every parameter, the input and the initial
states, for RNN (tanh, relu), LSTM (with and without peepholes) and GRU, over sizes, layer
counts, directions, layouts, lengths and initial states drawn by hypothesis."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad import Tensor, nn

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_peephole", "gru"]
TOLERANCE = {np.float64: 1e-9, np.float32: 1e-5}


def build(kind: str, isz: int, hsz: int, fused: bool, **kw):
    if kind.startswith("rnn"):
        return nn.RNN(isz, hsz, nonlinearity=kind[4:], fused=fused, **kw)
    if kind.startswith("lstm"):
        return nn.LSTM(isz, hsz, peephole=kind == "lstm_peephole", fused=fused, **kw)
    return nn.GRU(isz, hsz, fused=fused, **kw)


@st.composite
def problems(draw):
    """One configuration: sizes, layers, direction, layout, lengths, initial states, dtype."""
    p = dict(batch=draw(st.integers(1, 4)), steps=draw(st.integers(1, 6)),
             isz=draw(st.integers(1, 4)), hsz=draw(st.integers(1, 4)),
             layers=draw(st.integers(1, 3)), bidir=draw(st.booleans()),
             batch_first=draw(st.booleans()), bias=draw(st.booleans()),
             dtype=draw(st.sampled_from([np.float64, np.float32])),
             with_hx=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))
    p["lengths"] = draw(st.none() | st.lists(st.integers(0, p["steps"]), min_size=p["batch"],
                                              max_size=p["batch"]))
    return p


def run(layer, kind, p, x, hs, w_out, w_st):
    """Forward + backward of a weighted sum of everything; returns all the results."""
    lstm = kind.startswith("lstm")
    xt = Tensor(x.copy(), requires_grad=True)
    ht = None if hs is None else [Tensor(h.copy(), requires_grad=True) for h in hs]
    hx = None if ht is None else (tuple(ht) if lstm else ht[0])
    out, sts = layer(xt, hx, lengths=p["lengths"])
    sts = list(sts) if lstm else [sts]
    loss = (out * Tensor(w_out)).sum() + sum((s * Tensor(w_st)).sum() for s in sts)
    loss.backward()
    res = {"output": out.data, "x.grad": xt.grad}
    res.update({f"state{i}": s.data for i, s in enumerate(sts)})
    if ht is not None:
        res.update({f"hx{i}.grad": h.grad for i, h in enumerate(ht)})
    res.update({f"{n}.grad": q.grad for n, q in layer.named_parameters()})
    res.update({f"hidden_grads[{i}]": g for i, g in enumerate(layer.hidden_grads)})
    return res


@pytest.mark.parametrize("kind", KINDS)
@given(p=problems())
def test_fused_equals_primitive_graph(kind, p):
    rng = np.random.default_rng(p["seed"])
    dt = p["dtype"]
    kw = dict(num_layers=p["layers"], bidirectional=p["bidir"], batch_first=p["batch_first"],
              bias=p["bias"], dtype=dt, record_hidden_grads=True)
    fused = build(kind, p["isz"], p["hsz"], True, rng=rng, **kw)
    graph = build(kind, p["isz"], p["hsz"], False, **kw)
    graph.load_state_dict(fused.state_dict())
    B, T, H = p["batch"], p["steps"], p["hsz"]
    D = 2 if p["bidir"] else 1
    n = p["layers"] * D
    x = rng.standard_normal((B, T, p["isz"]) if p["batch_first"] else (T, B, p["isz"]))
    hs = None if not p["with_hx"] else [
        (rng.standard_normal((n, B, H)) * 0.5).astype(dt)
        for _ in range(2 if kind.startswith("lstm") else 1)]
    w_out = rng.standard_normal(x.shape[:2] + (D * H,)).astype(dt)
    w_st = rng.standard_normal((n, B, H)).astype(dt)
    want = run(graph, kind, p, x.astype(dt), hs, w_out, w_st)
    got = run(fused, kind, p, x.astype(dt), hs, w_out, w_st)
    assert got.keys() == want.keys()
    tol = TOLERANCE[dt]
    for key, value in want.items():
        assert got[key] is not None and value is not None, key
        assert got[key].dtype == dt and got[key].shape == value.shape, key
        np.testing.assert_allclose(got[key], value, rtol=tol, atol=tol, err_msg=key)
    if p["lengths"] is not None:  # outputs past each row's length are exactly zero
        out = got["output"] if p["batch_first"] else got["output"].transpose(1, 0, 2)
        for b, length in enumerate(p["lengths"]):
            assert np.all(out[b, length:] == 0.0)


def test_equivalence_check_can_fail():
    """Negative control: a graph layer with one weight changed disagrees with the fused one."""
    rng = np.random.default_rng(0)
    fused = nn.GRU(2, 3, dtype=np.float64, fused=True, rng=rng)
    graph = nn.GRU(2, 3, dtype=np.float64, fused=False)
    state = fused.state_dict()
    state["bias_hh_l0"][7] += 1e-6  # a bias of the n gate, inside r * (W_hn h + b_hn)
    graph.load_state_dict(state)
    x = Tensor(rng.standard_normal((4, 2, 2)))
    assert not np.allclose(fused(x)[0].data, graph(x)[0].data, rtol=1e-9, atol=1e-9)
