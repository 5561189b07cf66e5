"""An Embedding read by a fused recurrent layer as its projected table (the embedding fold).

1. kernels: token ids (T, B) into a table (V, G*H) equal the one-hot input with W_ih = table^T
   (forward, states, every gradient; the table's gradient is dW_ih^T), compiled and twin
   alike, and bad ids or tables are a ValueError naming the kernel;
2. ProjectedTable passes gradcheck, keeps the padding row's gradient at zero as Embedding does,
   and the chain ProjectedTable -> fused sequence on token ids passes gradcheck;
3. layers: Embedding -> RNN / LSTM / GRU gives the same outputs, states and gradients of every
   parameter with the fold on and off (bidirectional, batch_first, layers, lengths, padding,
   unbatched), the fold is really taken, and it is not taken where it would change behaviour
   (hooks or retain_grad on the Embedding's output) or cost more (a big vocabulary).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn
from minigrad import Tensor, _reference_rnn, kernels
from minigrad.nn import rnn as rnn_mod
from minigrad.ops import fused
from minigrad.ops.nn_ops import ProjectedTable
from test_recurrent_kernels import (CELLS, GATES, MODULE, TOL, assert_workers_give_the_twins_outputs,
                                    compiled, make_args, run_kernels)


def graph_ops(t: Tensor) -> set[str]:
    """Names of every op in the graph that produced t."""
    seen, ops, todo = set(), set(), [t._ctx]
    while todo:
        ctx = todo.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        ops.add(ctx.op)
        todo.extend(p._ctx for p in ctx.parents if p is not None)
    return ops


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


# ---------------------------------------------------------------- 2. gradcheck --------------
def test_projected_table_gradcheck():
    rng = np.random.default_rng(0)
    weight = Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    proj = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    table = ProjectedTable.apply(weight, proj)
    np.testing.assert_allclose(table.data, weight.data @ proj.data.T, rtol=1e-12)
    assert mg.gradcheck(lambda w, p: ProjectedTable.apply(w, p), [weight, proj])


def test_projected_table_lookups_with_padding_equal_embedding_then_matmul():
    """The padding row gets no gradient (a convention, not a derivative, so no central
    differences): the reference is the primitive graph embedding(padding_idx) -> matmul."""
    rng = np.random.default_rng(0)
    indices = np.array([[0, 2, 2], [4, 0, 2]])  # the padding row 2, more than once
    weight_data, proj_data = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    grad_weights = rng.standard_normal((2, 3, 4))
    results = []
    for folded in (True, False):
        weight = Tensor(weight_data, requires_grad=True)
        proj = Tensor(proj_data, requires_grad=True)
        if folded:
            out = mg.functional.embedding(indices, ProjectedTable.apply(weight, proj,
                                                                        padding_idx=2))
        else:
            out = mg.functional.embedding(indices, weight, padding_idx=2) @ proj.T
        (out * Tensor(grad_weights)).sum().backward()
        results.append((out.data, weight.grad, proj.grad))
    for u, v in zip(*results):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-12)
    assert not results[0][1][2].any(), "the padding row gets no gradient"


def test_projected_table_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"projected_table: .* weight \(5, 3\) float64, proj "
                                         r"\(4, 2\)"):
        ProjectedTable.apply(Tensor(np.zeros((5, 3))), Tensor(np.zeros((4, 2))))


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm_peep", "gru"])
def test_projected_table_into_a_fused_sequence_gradcheck(cell, backend):
    before = kernels.backend()
    kernels.use(backend)
    try:
        a, _ = make_args(cell, 3, 2, 2, 2, np.float64, seed=3)
        tokens = np.array([[0, 1], [3, 1], [0, 0]])  # (T, B), row 2 of the table unused
        weight = np.random.default_rng(1).standard_normal((4, 2))
        names = ["w_ih", "w_hh", "b_ih", "b_hh"] + (["w_peep"] if cell == "lstm_peep" else [])
        inputs = [Tensor(weight, requires_grad=True)] + \
            [Tensor(a[n], requires_grad=True) for n in names]
        lengths = np.array([3, 1])

        def fn(emb, w_ih, *rest):
            table = ProjectedTable.apply(emb, w_ih)
            h0 = Tensor(a["h0"])
            if cell == "gru":
                return fused.gru_sequence(tokens, h0, table, *rest, lengths=lengths,
                                          reverse=True)
            if cell == "rnn_tanh":
                return fused.rnn_sequence(tokens, h0, table, *rest, lengths=lengths,
                                          reverse=True)
            return fused.lstm_sequence(tokens, h0, Tensor(a["c0"]), table, *rest,
                                       lengths=lengths, reverse=True)
        assert mg.gradcheck(fn, inputs)
    finally:
        kernels.use(before)


# ---------------------------------------------------------------- 3. layers -----------------
LAYERS = {"lstm": (nn.LSTM, {}), "lstm_peep": (nn.LSTM, {"peephole": True}),
          "gru": (nn.GRU, {}), "rnn_relu": (nn.RNN, {"nonlinearity": "relu"})}
CONFIGS = {
    "plain": {},
    "bidirectional_2_layers_batch_first": dict(bidirectional=True, num_layers=2,
                                               batch_first=True),
    "lengths_and_padding": dict(lengths=True, padding_idx=0, bidirectional=True),
    "unbatched": dict(unbatched=True, vocab=3),  # 7 tokens: at most 3 rows fold
}


def embedding_lm(cell, config, fold, dtype, vocab=6, seed=0, fused=True):
    """Embedding -> layer -> squared sum through a fixed projection; returns the output,
    the final states and every parameter's gradient, and the ops of the output's graph."""
    cls, kwargs = LAYERS[cell]
    kwargs = dict(kwargs, fused=fused)
    opts = dict(config)
    use_lengths, unbatched = opts.pop("lengths", False), opts.pop("unbatched", False)
    padding_idx = opts.pop("padding_idx", None)
    vocab = opts.pop("vocab", vocab)
    previous = rnn_mod.set_embedding_fold(fold)
    try:
        rng = np.random.default_rng(seed)
        emb = nn.Embedding(vocab, 3, padding_idx=padding_idx, dtype=dtype, rng=rng)
        layer = cls(3, 4, dtype=dtype, rng=rng, **kwargs, **opts)
        T, B = 7, 4
        shape = (T,) if unbatched else (B, T) if opts.get("batch_first") else (T, B)
        tokens = rng.integers(0, vocab, shape)
        lengths = np.array([7, 2, 0, 5]) if use_lengths else None
        out, state = layer(emb(tokens), lengths=lengths)
        states = state if isinstance(state, tuple) else (state,)
        weight = Tensor(rng.standard_normal(out.shape).astype(dtype))
        loss = (out * weight).sum() + sum((s * s).sum() for s in states)
        ops = graph_ops(out)  # before backward, which releases the graph
        loss.backward()
        params = [emb.weight, *layer.parameters()]
        return [out.data] + [s.data for s in states], [p.grad for p in params], ops
    finally:
        rnn_mod.set_embedding_fold(previous)


@pytest.mark.parametrize("reference", ["unfolded", "graph"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("cell", list(LAYERS))
def test_the_fold_equals_the_unfolded_layer(cell, config, dtype, reference):
    """Against the fused kernels without the fold, and against the primitive graph."""
    values, grads, ops = embedding_lm(cell, CONFIGS[config], True, dtype)
    values0, grads0, ops0 = embedding_lm(cell, CONFIGS[config], reference == "graph", dtype,
                                         fused=reference == "unfolded")
    assert "projected_table" in ops, "the fold was not taken"
    assert "projected_table" not in ops0 and "embedding" in ops0
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for u, v in zip(values + grads, values0 + grads0):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


def test_the_fold_leaves_the_unread_embedding_output_where_it_is(monkeypatch):
    """With the fold, layer 0 reads the table, so the Embedding's output is not made
    time-major (for batch_first that was a transposed copy of rows nobody reads); without
    it, it is."""
    def moved(*args):
        raise AssertionError("the input was made time-major")
    monkeypatch.setattr(rnn_mod._RNNBase, "_time_major", moved)
    config = CONFIGS["bidirectional_2_layers_batch_first"]
    assert "projected_table" in embedding_lm("lstm", config, True, np.float32)[2]
    with pytest.raises(AssertionError, match="made time-major"):
        embedding_lm("lstm", config, False, np.float32)


def test_the_fold_is_not_taken_for_a_vocabulary_larger_than_half_the_tokens():
    # 7 x 4 = 28 tokens: 14 rows still fold, 15 do not (the table product would cost more)
    assert "projected_table" in embedding_lm("gru", {}, True, np.float64, vocab=14)[2]
    assert "projected_table" not in embedding_lm("gru", {}, True, np.float64, vocab=15)[2]


@pytest.mark.parametrize("watch", ["retain_grad", "register_hook"])
def test_the_fold_keeps_gradients_that_are_watched_on_the_embedding_output(watch):
    rng = np.random.default_rng(0)
    emb, layer = nn.Embedding(5, 3, rng=rng), nn.LSTM(3, 4, rng=rng)
    x = emb(rng.integers(0, 5, (6, 2)))
    seen = []
    if watch == "retain_grad":
        x.retain_grad()
    else:
        x.register_hook(seen.append)
    out, _ = layer(x)
    assert "projected_table" not in graph_ops(out)
    out.sum().backward()
    got = x.grad if watch == "retain_grad" else seen[0]
    assert got is not None and got.shape == (6, 2, 3) and np.abs(got).sum() > 0


def test_an_embedding_output_used_twice_gets_both_gradients():
    def run(fold):
        previous = rnn_mod.set_embedding_fold(fold)
        try:
            rng = np.random.default_rng(0)
            emb = nn.Embedding(5, 4, dtype=np.float64, rng=rng)
            layer = nn.GRU(4, 4, dtype=np.float64, rng=rng)
            x = emb(rng.integers(0, 5, (6, 3)))
            out, _ = layer(x)
            ops = graph_ops(out)  # before backward, which releases the graph
            ((out + x) ** 2).sum().backward()   # a residual path around the layer
            return emb.weight.grad, layer.weight_ih_l0.grad, ops
        finally:
            rnn_mod.set_embedding_fold(previous)
    (g_emb, g_ih, ops), (g_emb0, g_ih0, _) = run(True), run(False)
    assert "projected_table" in ops
    np.testing.assert_allclose(g_emb, g_emb0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_ih, g_ih0, rtol=1e-10, atol=1e-12)


def test_the_fold_needs_the_fused_path_and_a_recorded_graph():
    rng = np.random.default_rng(0)
    emb = nn.Embedding(5, 3, rng=rng)
    tokens = rng.integers(0, 5, (6, 2))
    graph_layer = nn.LSTM(3, 4, fused=False, rng=rng)
    assert "projected_table" not in graph_ops(graph_layer(emb(tokens))[0])
    layer = nn.LSTM(3, 4, rng=rng)
    with mg.no_grad():
        out_eval = layer(emb(tokens))[0]
    out_train = layer(emb(tokens))[0]
    assert "projected_table" in graph_ops(out_train)
    np.testing.assert_allclose(out_eval.data, out_train.data, rtol=1e-5, atol=1e-6)
