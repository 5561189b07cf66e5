"""An array the library handed to a user is never written again by the library.

The fused recurrent kernels once recycled their big buffers from a pool whenever the pool's
reference was the only one left; a numpy view (``out.numpy()[-1]``, or the library's own
reshape of an unbatched output) keeps the memory alive without holding that reference, so the
next call of the layer overwrote what the user kept. Each test keeps only a view (or a copy
made before the next call, to compare with), runs the layer again with the same shapes, and
checks that the kept values did not change. Every cell (RNN tanh and relu, LSTM with and
without peepholes, GRU) on both backends; the other kernels (Linear, cross-entropy, Embedding,
the elementwise backward rules) likewise.
"""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.fast import kernels
from minigrad.fast import fused

LAYERS = {
    "rnn_tanh": lambda: nn.RNN(3, 5, rng=0),
    "rnn_relu": lambda: nn.RNN(3, 5, nonlinearity="relu", rng=0),
    "lstm": lambda: nn.LSTM(3, 5, rng=0),
    "lstm_peep": lambda: nn.LSTM(3, 5, peephole=True, rng=0),
    "gru": lambda: nn.GRU(3, 5, rng=0),
}
BACKENDS = ["compiled", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    previous = kernels.backend()
    try:
        kernels.use(request.param)
    except ImportError:
        pytest.skip("the compiled extension is not built")
    yield request.param
    kernels.use(previous)


def _data(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_unbatched_output_under_no_grad_survives_the_next_call(cell, backend):
    layer = LAYERS[cell]()
    with mg.no_grad():
        out = layer(mg.tensor(_data(1, 6, 3)))[0]   # (T, H): the library reshapes a view
        kept, expected = out.numpy(), out.numpy().copy()
        del out
        layer(mg.tensor(_data(2, 6, 3)))
    np.testing.assert_array_equal(kept, expected)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_last_step_kept_in_an_inference_loop_survives_the_next_batch(cell, backend):
    layer = LAYERS[cell]()
    kept, expected = [], []
    with mg.no_grad():
        for seed in range(4):
            out, _ = layer(mg.tensor(_data(seed, 7, 2, 3)))
            kept.append(out.numpy()[-1])            # a view of the output's last step
            expected.append(out.numpy()[-1].copy())
            del out, _
    for k, e in zip(kept, expected):
        np.testing.assert_array_equal(k, e)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_final_states_and_training_outputs_survive_the_next_call(cell, backend):
    layer = LAYERS[cell]()
    kept, expected = [], []
    for seed in range(3):
        out, state = layer(mg.tensor(_data(seed, 7, 2, 3)))
        h = state[0] if isinstance(state, tuple) else state
        out.sum().backward()
        views = [out.numpy()[0], h.numpy()[0]]
        kept.append(views)
        expected.append([v.copy() for v in views])
        del out, state, h
    for k, e in zip(kept, expected):
        for a, b in zip(k, e):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_gradients_seen_by_hooks_survive_the_next_backward(cell, backend):
    """A hook on the input and on W_hh keeps views of the gradients handed to it (dx and dW_hh
    come straight from the fused backward); later backward calls must not change them."""
    layer = LAYERS[cell]()
    seen, expected = [], []

    def keep(g):
        seen.append(g.reshape(-1))
        expected.append(g.copy().reshape(-1))

    layer.weight_hh_l0.register_hook(keep)
    for seed in range(3):
        x = mg.tensor(_data(seed, 6, 2, 3), requires_grad=True)
        x.register_hook(keep)
        out, _ = layer(x)
        (out * mg.tensor(_data(seed + 10, 6, 2, 5))).sum().backward()
        del x, out, _
        layer.zero_grad()
    assert len(seen) == 6
    for k, e in zip(seen, expected):
        np.testing.assert_array_equal(k, e)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_hidden_gradients_given_to_a_sink_survive_the_next_backward(cell, backend):
    """hidden_grad_sink receives dL/dh (T, B, H) from the fused backward; a sink that keeps a
    view of it (here the last step) keeps the values it saw."""
    rng = np.random.default_rng(0)
    G, H, I = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "lstm_peep": 4, "gru": 3}[cell], 5, 3
    w = [mg.tensor(rng.standard_normal(s).astype(np.float32) * 0.3, requires_grad=True)
         for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    seen, expected = [], []

    def sink(dh):
        seen.append(dh[-1])
        expected.append(dh[-1].copy())

    for seed in range(3):
        x = mg.tensor(_data(seed, 6, 2, I), requires_grad=True)
        h0 = mg.tensor(np.zeros((2, H), np.float32))
        if cell.startswith("lstm"):
            peep = mg.tensor(rng.standard_normal((3, H)).astype(np.float32)) \
                if cell == "lstm_peep" else None
            out = fused.lstm_sequence(x, h0, h0, *w, peep, hidden_grad_sink=sink)[0]
        elif cell == "gru":
            out = fused.gru_sequence(x, h0, *w, hidden_grad_sink=sink)[0]
        else:
            out = fused.rnn_sequence(x, h0, *w, nonlinearity=cell[4:], hidden_grad_sink=sink)[0]
        (out * mg.tensor(_data(seed + 10, 6, 2, H))).sum().backward()
        del x, out
    assert len(seen) == 3
    for k, e in zip(seen, expected):
        np.testing.assert_array_equal(k, e)


def test_other_kernels_outputs_survive_the_next_call(backend):
    """Linear, cross-entropy, Embedding and the tanh/sigmoid backward rules: views of their
    outputs and of the gradients they hand to hooks stay as they were."""
    mg.manual_seed(0)
    lin, emb = nn.Linear(4, 3), nn.Embedding(10, 4)
    seen, expected = [], []

    def keep(g):
        seen.append(g.reshape(-1))
        expected.append(g.copy().reshape(-1))

    lin.weight.register_hook(keep)
    emb.weight.register_hook(keep)
    outs = []
    for seed in range(3):
        ids = np.random.default_rng(seed).integers(0, 10, size=(5,))
        x = emb(mg.tensor(ids))
        h = lin(x.tanh().sigmoid())
        h.register_hook(keep)
        loss = F.cross_entropy(h, mg.tensor(ids % 3))
        outs.append((h.numpy()[0], h.numpy()[0].copy()))
        loss.backward()
        del x, h, loss
    assert len(seen) == 9
    for k, e in zip(seen, expected):
        np.testing.assert_array_equal(k, e)
    for k, e in outs:
        np.testing.assert_array_equal(k, e)
