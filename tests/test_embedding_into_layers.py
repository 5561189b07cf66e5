"""An Embedding feeding a recurrent layer, and the recurrent kernels' token-id input.

1. kernels: token ids (T, B) into a table (V, G*H) equal the one-hot input with W_ih = table^T
   (forward, states, every gradient; the table's gradient is dW_ih^T), compiled and twin
   alike, and bad ids or tables are a ValueError naming the kernel;
2. layers: the Embedding's output is an ordinary input of the layer, so what hooks and
   retain_grad on it see -- added before or after the layer's forward -- is its gradient,
   the same on the fused path as on the primitive graph, and a residual use adds up.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad.nn as nn
from minigrad import Tensor
from minigrad.fast import _reference_rnn
from test_recurrent_kernels import (CELLS, GATES, MODULE, TOL, compiled,
                                    assert_workers_give_the_twins_outputs, make_args, run_kernels)


# ---------------------------------------------------------------- 1. kernels ----------------
@pytest.mark.parametrize("impl", ["compiled", "twin"])
@pytest.mark.parametrize("cell", CELLS)
@given(T=st.integers(1, 5), B=st.integers(1, 5), V=st.integers(1, 4), H=st.integers(1, 5),
       lens=st.one_of(st.none(), st.lists(st.floats(0, 1), min_size=5, max_size=5)),
       reverse=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_token_ids_equal_one_hot_inputs(impl, cell, T, B, V, H, lens, reverse, dtype, seed):
    mod = compiled(cell) if impl == "compiled" else _reference_rnn
    a, g = make_args(cell, T, B, V, H, dtype, seed)       # w_ih (G*H, V): one-hot inputs
    tokens = np.random.default_rng(seed).integers(0, V, (T, B))
    one_hot = dict(a, x=np.eye(V, dtype=dtype)[tokens])
    by_token = dict(a, x=tokens, w_ih=np.ascontiguousarray(a["w_ih"].T))   # the table (V, G*H)
    lengths = None if lens is None else np.array([round(f * T) for f in lens[:B]], np.int64)
    want = run_kernels(mod, cell, one_hot, g, lengths, reverse)
    got = run_kernels(mod, cell, by_token, g, lengths, reverse)
    n_fwd = 3 if MODULE[cell] == "lstm" else 2          # out, h_n (, c_n)
    dx_at, dw_ih_at = n_fwd, 2 * n_fwd                  # then dx, dh0 (, dc0), dw_ih
    tol = dict(rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
    for k, (u, v) in enumerate(zip(got, want)):
        if k == dx_at:
            assert u is None, "token ids have no gradient"
        elif k == dw_ih_at:     # the table's gradient, in its (V, G*H) layout
            np.testing.assert_allclose(u, v.T, err_msg="d table = dW_ih^T", **tol)
        elif v is None:
            assert u is None, f"output {k}"
        else:
            np.testing.assert_allclose(u, v, err_msg=f"output {k}", **tol)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("cell", CELLS)
@given(T=st.integers(1, 5), B=st.integers(9, 26), H=st.integers(1, 5),
       lens=st.one_of(st.none(), st.lists(st.floats(0, 1), min_size=26, max_size=26)),
       reverse=st.booleans(), seed=st.integers(0, 2**16))
def test_token_ids_split_across_workers_equal_the_twin(cell, workers, T, B, H, lens, reverse,
                                                       seed):
    """Each worker looks up its own batch rows' table rows, step by step inside the time loop
    (rnn_common.look_up_step); with 2 and 3 workers (uneven splits) the compiled kernels give
    what the single-threaded twin gives."""
    a, g = make_args(cell, T, B, 4, H, np.float64, seed)
    tokens = np.random.default_rng(seed).integers(0, 4, (T, B))
    by_token = dict(a, x=tokens, w_ih=np.ascontiguousarray(a["w_ih"].T))
    lengths = None if lens is None else np.array([round(f * T) for f in lens[:B]], np.int64)
    assert_workers_give_the_twins_outputs(cell, by_token, g, lengths, reverse, workers,
                                          TOL[np.float64])


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_bad_token_ids_or_tables_are_errors_naming_the_kernel(cell):
    a, g = make_args(cell, 3, 2, 5, 4, np.float32, seed=0)
    name = f"{MODULE[cell]}_forward"
    table = np.zeros((5, GATES[cell] * 4), np.float32)
    cases = [
        (dict(x=np.array([[0, 5]] * 3), w_ih=table), r"token 5 is out of range for a table of 5"),
        (dict(x=np.array([[0, -1]] * 3), w_ih=table), r"token -1 is out of range"),
        (dict(x=np.zeros((3, 2), np.int32), w_ih=table), "token ids x must be a C-contiguous"),
        (dict(x=np.zeros((3, 2), np.int64), w_ih=table[:, 1:]), r"w_ih must have shape \(5, "),
        (dict(x=np.zeros((3, 2), np.int64), w_ih=None), "with token ids, w_ih must be the"),
    ]
    for mod in (compiled(cell), _reference_rnn):
        for change, message in cases:
            with pytest.raises(ValueError, match=f"{name}: {message}"):
                run_kernels(mod, cell, dict(a, **change), g, None, False)


# ---------------------------------------------------------------- 2. layers -----------------
LAYERS = {"lstm": (nn.LSTM, {}), "lstm_peep": (nn.LSTM, {"peephole": True}),
          "gru": (nn.GRU, {}), "rnn_relu": (nn.RNN, {"nonlinearity": "relu"})}


def embedding_lm(cell, fused, watch, when, batch_first=False, seed=0):
    """Embedding (float64) -> layer -> a fixed weighted sum; the gradient of the Embedding's
    output as ``watch`` ('hook' or 'retain_grad', added ``when`` 'before' or 'after' the
    layer's forward) sees it, the Embedding weight's gradient, and the token ids."""
    cls, kwargs = LAYERS[cell]
    rng = np.random.default_rng(seed)
    emb = nn.Embedding(5, 3, dtype=np.float64, rng=rng)
    layer = cls(3, 4, dtype=np.float64, rng=rng, fused=fused, batch_first=batch_first,
                **kwargs)
    ids = rng.integers(0, 5, (2, 6) if batch_first else (6, 2))
    x = emb(ids)
    seen = []

    def watch_it():
        if watch == "retain_grad":
            x.retain_grad()
        else:
            x.register_hook(seen.append)
    if when == "before":
        watch_it()
    out, state = layer(x)
    if when == "after":
        watch_it()
    h_n = state[0] if isinstance(state, tuple) else state
    weight = Tensor(rng.standard_normal(out.shape))
    ((out * weight).sum() + (h_n * h_n).sum()).backward()
    got = x.grad if watch == "retain_grad" else (seen[0] if seen else None)
    return got, emb.weight.grad, ids


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("watch", ["retain_grad", "hook"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_a_watch_on_the_embedding_output_sees_its_gradient(cell, watch, when, batch_first):
    """The fused layer's gradient of its input, seen by a hook or retain_grad added before or
    after its forward, equals the primitive graph's, and the Embedding weight's gradient is the
    scatter-add of it (checked against numpy)."""
    got, dweight, ids = embedding_lm(cell, True, watch, when, batch_first)
    want, dweight_graph, _ = embedding_lm(cell, False, watch, when, batch_first)
    assert got is not None and got.shape == ((2, 6, 3) if batch_first else (6, 2, 3))
    assert np.abs(got).sum() > 0
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dweight, dweight_graph, rtol=1e-10, atol=1e-12)
    scatter = np.zeros((5, 3))
    np.add.at(scatter, ids.reshape(-1), got.reshape(-1, 3))
    np.testing.assert_allclose(dweight, scatter, rtol=1e-10, atol=1e-12)


def test_an_embedding_output_used_twice_gets_both_gradients():
    """A residual path around a fused layer: the Embedding weight's gradient sums both uses,
    as on the primitive graph."""
    def run(fused):
        rng = np.random.default_rng(0)
        emb = nn.Embedding(5, 4, dtype=np.float64, rng=rng)
        layer = nn.GRU(4, 4, dtype=np.float64, rng=rng, fused=fused)
        x = emb(rng.integers(0, 5, (6, 3)))
        out, _ = layer(x)
        ((out + x) ** 2).sum().backward()
        return emb.weight.grad, layer.weight_ih_l0.grad
    for u, v in zip(run(True), run(False)):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
