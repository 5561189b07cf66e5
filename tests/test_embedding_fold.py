"""The embedding fold (minigrad/fast/fold.py): a fused layer reading an Embedding's output reads
the projected table instead; outputs, states and every gradient equal the unfolded layer's, and
a watch on the Embedding's output still sees its gradient."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.fast import fold, kernels

LAYERS = {
    "rnn_tanh": lambda **kw: nn.RNN(4, 5, **kw),
    "rnn_relu": lambda **kw: nn.RNN(4, 5, nonlinearity="relu", **kw),
    "lstm": lambda **kw: nn.LSTM(4, 5, **kw),
    "lstm_peephole": lambda **kw: nn.LSTM(4, 5, peephole=True, **kw),
    "gru": lambda **kw: nn.GRU(4, 5, **kw),
}


@pytest.fixture
def calls(monkeypatch):
    """How often the folded Function ran."""
    seen = []
    original = fold.FoldedSequence.forward

    def spy(ctx, *args, **kwargs):
        seen.append(kwargs["mode"])
        return original(ctx, *args, **kwargs)
    monkeypatch.setattr(fold.FoldedSequence, "forward", staticmethod(spy))
    return seen


def run(cell, folded, layout, bidirectional=False, num_layers=1, lengths=None, padding_idx=None,
        watch=False):
    """Embedding -> layer -> a weighted sum; returns outputs, states and all gradients."""
    previous = fold.set_enabled(folded)
    try:
        rng = np.random.default_rng(3)
        emb = nn.Embedding(6, 4, padding_idx=padding_idx, dtype=np.float64, rng=rng)
        layer = LAYERS[cell](num_layers=num_layers, bidirectional=bidirectional,
                             batch_first=layout == "batch_first", dtype=np.float64, rng=rng)
        shape = {"tm": (7, 3), "batch_first": (3, 7), "unbatched": (12,)}[layout]
        ids = rng.integers(0, 6, shape)
        x = emb(mg.tensor(ids))
        if watch:
            x.retain_grad()
        out, state = layer(x, lengths=lengths)
        states = state if isinstance(state, tuple) else (state,)
        weights = rng.standard_normal(out.shape)
        loss = (out * mg.tensor(weights)).sum() + sum((s * s).sum() for s in states)
        loss.backward()
        grads = {name: p.grad for name, p in layer.named_parameters()}
        grads["embedding"] = emb.weight.grad
        return out.numpy(), [s.numpy() for s in states], grads, x.grad
    finally:
        fold.set_enabled(previous)


def assert_same(a, b):
    out_a, states_a, grads_a, _ = a
    out_b, states_b, grads_b, _ = b
    np.testing.assert_allclose(out_a, out_b, rtol=1e-10, atol=1e-12)
    for s, t in zip(states_a, states_b):
        np.testing.assert_allclose(s, t, rtol=1e-10, atol=1e-12)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert grads_a[name] is not None and np.abs(grads_a[name]).sum() > 0, name
        np.testing.assert_allclose(grads_a[name], grads_b[name], rtol=1e-9, atol=1e-11,
                                   err_msg=name)


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("layout", ["tm", "batch_first", "unbatched"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_fold_equals_the_unfolded_layer(cell, layout, backend, calls):
    if backend == "compiled" and kernels.backend() != "compiled":
        pytest.skip("the compiled kernels are not in use (not built, or MINIGRAD_BACKEND=numpy)")
    previous = kernels.backend()
    kernels.use(backend)
    try:
        folded = run(cell, True, layout)
        assert len(calls) == 1                     # the fold ran, once
        plain = run(cell, False, layout)
        assert len(calls) == 1                     # and not when switched off
    finally:
        kernels.use(previous)
    assert_same(folded, plain)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_fold_with_two_layers_both_directions_lengths_and_padding(cell, calls):
    kw = dict(bidirectional=True, num_layers=2, lengths=np.array([7, 4, 1]), padding_idx=0)
    folded = run(cell, True, "tm", **kw)
    assert len(calls) == 2                         # layer 0, each direction
    assert_same(folded, run(cell, False, "tm", **kw))
    assert np.all(folded[2]["embedding"][0] == 0)  # the padding row gets no gradient


@pytest.mark.parametrize("cell", list(LAYERS))
def test_a_watched_embedding_output_gets_its_gradient_under_the_fold(cell, calls):
    folded = run(cell, True, "batch_first", watch=True)
    assert len(calls) == 1
    plain = run(cell, False, "batch_first", watch=True)
    assert folded[3] is not None and np.abs(folded[3]).sum() > 0
    np.testing.assert_allclose(folded[3], plain[3], rtol=1e-10, atol=1e-12)
    assert_same(folded, plain)


def test_the_fold_waits_for_enough_tokens(calls):
    """A table with more than half as many rows as there are tokens is read the plain way."""
    emb, layer = nn.Embedding(50, 4), nn.GRU(4, 5)
    layer(emb(mg.tensor(np.zeros((3, 2), np.int64))))
    assert calls == []


def test_the_fold_forgets_outputs_that_died():
    emb = nn.Embedding(6, 4)
    before = len(fold._LOOKUPS)
    x = emb(mg.tensor(np.zeros((5, 2), np.int64)))
    assert len(fold._LOOKUPS) == before + 1
    del x
    assert len(fold._LOOKUPS) == before


def test_fold_under_no_grad_gives_the_same_output(calls):
    emb, layer = nn.Embedding(6, 4, rng=0), nn.LSTM(4, 5, rng=1)
    ids = mg.tensor(np.random.default_rng(0).integers(0, 6, (8, 2)))
    with mg.no_grad():
        folded, _ = layer(emb(ids))
        previous = fold.set_enabled(False)
        plain, _ = layer(emb(ids))
        fold.set_enabled(previous)
    assert len(calls) == 1
    np.testing.assert_allclose(folded.numpy(), plain.numpy(), rtol=1e-5, atol=1e-6)
