"""Modules after ``.double()`` / ``.float()`` / ``.to(dtype)``: their dtype follows their
parameters, on the fused and the primitive path, forward and backward; and every module takes
the same ``rng`` forms (None, an int seed, a numpy Generator), with clear errors for others."""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor, nn

SEQ = {"rnn": lambda f: nn.RNN(3, 4, num_layers=2, fused=f, rng=0),
       "rnn_relu": lambda f: nn.RNN(3, 4, nonlinearity="relu", bidirectional=True, fused=f,
                                    rng=0),
       "lstm": lambda f: nn.LSTM(3, 4, num_layers=2, bidirectional=True, fused=f, rng=0),
       "lstm_peephole": lambda f: nn.LSTM(3, 4, peephole=True, fused=f, rng=0),
       "gru": lambda f: nn.GRU(3, 4, num_layers=2, batch_first=True, fused=f, rng=0)}
CELLS = {"rnn_cell": lambda: nn.RNNCell(3, 4, rng=0),
         "lstm_cell": lambda: nn.LSTMCell(3, 4, rng=0),
         "lstm_cell_peephole": lambda: nn.LSTMCell(3, 4, peephole=True, rng=0),
         "gru_cell": lambda: nn.GRUCell(3, 4, rng=0),
         "linear": lambda: nn.Linear(3, 4, rng=0)}


def _forward_backward(module, x: np.ndarray, dtype) -> tuple[np.ndarray, dict]:
    """Output and every parameter's gradient of sum(output * fixed weights)."""
    module.zero_grad()
    out = module(Tensor(x.astype(dtype)))
    out = out[0] if isinstance(out, tuple) else out
    weight = np.random.default_rng(5).standard_normal(out.shape)
    (out * Tensor(weight.astype(dtype))).sum().backward()
    return out, {n: p.grad for n, p in module.named_parameters()}


def _check_both_ways(make, x):
    """float32 -> float64 -> float32 (by .double, .float and .to): each time the module runs
    in the new dtype and matches a module built in that dtype from the same state."""
    module = make()
    for convert, dtype in ((lambda m: m.double(), np.float64), (lambda m: m.float(), np.float32),
                           (lambda m: m.to(np.float64), np.float64),
                           (lambda m: m.to("float32"), np.float32)):
        assert convert(module) is module
        assert all(p.dtype == dtype for p in module.parameters())
        assert getattr(module, "dtype", dtype) == dtype
        out, grads = _forward_backward(module, x, dtype)
        assert out.dtype == dtype and all(g.dtype == dtype for g in grads.values())
        fresh = make().to(dtype)          # built independently, then given the same weights
        fresh.load_state_dict(module.state_dict())
        want_out, want_grads = _forward_backward(fresh, x, dtype)
        tol = 1e-12 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(out.data, want_out.data, rtol=tol, atol=tol)
        for name, g in grads.items():
            np.testing.assert_allclose(g, want_grads[name], rtol=tol, atol=tol, err_msg=name)
        # the other dtype is refused with the usual message
        other = np.float32 if dtype == np.float64 else np.float64
        with pytest.raises(TypeError, match="differs from the parameters' dtype"):
            module(Tensor(x.astype(other)))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kind", sorted(SEQ))
def test_sequence_layers_follow_their_parameters_dtype(kind, fused):
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    _check_both_ways(lambda: SEQ[kind](fused), x)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_cells_and_linear_follow_their_parameters_dtype(kind):
    x = np.random.default_rng(2).standard_normal((2, 3))
    _check_both_ways(CELLS[kind], x)


def test_a_lstm_with_a_given_state_after_double():
    layer = nn.LSTM(3, 4, rng=0).double()
    h0 = Tensor(np.zeros((1, 2, 4)))
    out, (h, c) = layer(Tensor(np.ones((5, 2, 3))), (h0, h0))
    assert out.dtype == h.dtype == c.dtype == np.float64


# ---- rng forms -------------------------------------------------------------------------------
BUILDERS = {"Linear": lambda rng: nn.Linear(3, 4, rng=rng),
            "Embedding": lambda rng: nn.Embedding(6, 4, rng=rng),
            "RNNCell": lambda rng: nn.RNNCell(3, 4, rng=rng),
            "LSTMCell": lambda rng: nn.LSTMCell(3, 4, peephole=True, rng=rng),
            "GRUCell": lambda rng: nn.GRUCell(3, 4, rng=rng),
            "RNN": lambda rng: nn.RNN(3, 4, rng=rng),
            "LSTM": lambda rng: nn.LSTM(3, 4, rng=rng),
            "GRU": lambda rng: nn.GRU(3, 4, rng=rng)}


def _weights(module) -> list[np.ndarray]:
    return [p.data.copy() for p in module.parameters()]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_module_takes_none_an_int_seed_or_a_generator(name):
    build = BUILDERS[name]
    by_seed = _weights(build(7))
    by_gen = _weights(build(np.random.default_rng(7)))
    for a, b in zip(by_seed, by_gen):        # an int seed is the Generator of that seed
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(by_seed, _weights(build(8))))
    mg.manual_seed(3)
    first = _weights(build(None))
    mg.manual_seed(3)
    for a, b in zip(first, _weights(build(None))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match=f"{name}: rng must be None, an int seed or a "
                                        "numpy.random.Generator, got str"):
        build("seed")


def test_dropout_with_an_int_seed_draws_new_masks_each_call_repeatably():
    x = Tensor(np.ones((4, 50)))
    a, b = nn.Dropout(0.5, rng=11), nn.Dropout(0.5, rng=11)
    m1, m2 = a(x).data, a(x).data
    assert not np.array_equal(m1, m2)             # the layer's generator moves on
    np.testing.assert_array_equal(b(x).data, m1)  # the same seed repeats the same masks
    np.testing.assert_array_equal(b(x).data, m2)
    with pytest.raises(TypeError, match="Dropout: rng must be"):
        nn.Dropout(0.5, rng=1.5)


def test_a_recurrent_layer_with_an_int_seed_draws_new_dropout_masks_each_call():
    layer = nn.LSTM(3, 4, num_layers=2, dropout=0.5, rng=4)
    x = Tensor(np.ones((3, 2, 3), dtype=np.float32))
    assert not np.array_equal(layer(x)[0].data, layer(x)[0].data)


# ---- Linear given something that is not a Tensor of the right rank ---------------------------
@pytest.mark.parametrize("bad,error,match", [
    (3.0, TypeError, r"Linear\(3, 4\): input must be a Tensor of shape \(\.\.\., 3\), got float"),
    ([1.0, 2.0, 3.0], TypeError, r"Linear\(3, 4\): input must be a Tensor .* got list"),
    (np.ones(3), TypeError, r"Linear\(3, 4\): input must be a Tensor .* got ndarray"),
    (Tensor(np.float32(2.0)), ValueError,
     r"Linear\(3, 4\): input of shape \(\) has no last dimension, expected shape \(\.\.\., 3\)"),
    (Tensor(np.ones((2, 5), dtype=np.float32)), ValueError,
     r"Linear\(3, 4\): input of shape \(2, 5\) has last dimension 5, expected shape"),
])
def test_linear_names_itself_and_the_shapes_for_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        nn.Linear(3, 4, rng=0)(bad)


def test_sampling_without_rng_follows_manual_seed():
    from minigrad.decoding import sample_logits
    logits = np.random.default_rng(0).standard_normal((64, 10))
    mg.manual_seed(9)
    first = sample_logits(logits)
    mg.manual_seed(9)
    np.testing.assert_array_equal(sample_logits(logits), first)
    with pytest.raises(TypeError, match="sample_logits: rng must be"):
        sample_logits(logits, rng="x")
