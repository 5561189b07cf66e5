"""Sequence layers RNN, LSTM, GRU on both paths (primitive graph and fused): shapes, variable
lengths, truncated BPTT in chunks, dropout, recorded hidden-state gradients, errors, the fused
switch, and gradcheck in every configuration."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor, nn
from minigrad.nn import rnn
from helpers import swapped

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_peephole", "gru"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "lstm_peephole": 4, "gru": 3}
PATHS = [pytest.param(False, id="graph"), pytest.param(True, id="fused")]


def make(kind: str, isz: int, hsz: int, **kw):
    kw.setdefault("dtype", np.float64)
    if kind.startswith("rnn"):
        return nn.RNN(isz, hsz, nonlinearity=kind[4:], **kw)
    if kind.startswith("lstm"):
        return nn.LSTM(isz, hsz, peephole=kind == "lstm_peephole", **kw)
    return nn.GRU(isz, hsz, **kw)


def states(kind: str, result):
    """(output, [h_n] or [h_n, c_n]) from a layer's return value."""
    out, st = result
    return out, list(st) if kind.startswith("lstm") else [st]


def hx_arg(kind: str, hs):
    return tuple(hs) if kind.startswith("lstm") else hs[0]


# ---- shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_shapes_and_parameter_names(kind, layers, bidir, batch_first):
    T, B, I, H = 4, 3, 5, 2
    D = 2 if bidir else 1
    layer = make(kind, I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first,
                 dtype=np.float32, fused=False)
    G = GATES[kind]
    want = {}
    for k in range(layers):
        for sfx in ["", "_reverse"][:D]:
            want[f"weight_ih_l{k}{sfx}"] = (G * H, I if k == 0 else H * D)
            want[f"weight_hh_l{k}{sfx}"] = (G * H, H)
            want[f"bias_ih_l{k}{sfx}"] = (G * H,)
            want[f"bias_hh_l{k}{sfx}"] = (G * H,)
            if kind == "lstm_peephole":
                want[f"weight_peephole_l{k}{sfx}"] = (3, H)
    assert {n: p.shape for n, p in layer.named_parameters()} == want
    x = np.random.default_rng(0).standard_normal((B, T, I) if batch_first else (T, B, I))
    out, sts = states(kind, layer(Tensor(x.astype(np.float32))))
    assert out.shape == ((B, T, D * H) if batch_first else (T, B, D * H))
    assert out.dtype == np.float32
    assert all(s.shape == (layers * D, B, H) for s in sts)
    # unbatched input (T, I): output (T, D*H), states (layers*D, H)
    single = x[0] if batch_first else x[:, 0]
    out1, sts1 = states(kind, layer(Tensor(single.astype(np.float32))))
    assert out1.shape == (T, D * H) and all(s.shape == (layers * D, H) for s in sts1)
    np.testing.assert_allclose(out1.data, out.data[0] if batch_first else out.data[:, 0],
                               rtol=1e-5, atol=1e-6)


# ---- variable lengths ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("fused", PATHS)
def test_lengths_equal_each_row_run_alone(kind, bidir, fused):
    T, B, I, H, layers = 5, 4, 3, 3, 2
    D = 2 if bidir else 1
    rng = np.random.default_rng(7)
    layer = make(kind, I, H, num_layers=layers, bidirectional=bidir, fused=fused, rng=rng)
    lens = np.array([5, 2, 0, 4])
    x = Tensor(rng.standard_normal((T, B, I)), requires_grad=True)
    hs = [Tensor(rng.standard_normal((layers * D, B, H)), requires_grad=True)
          for _ in range(2 if kind.startswith("lstm") else 1)]
    w_out = rng.standard_normal((T, B, D * H))
    w_st = rng.standard_normal((layers * D, B, H))
    out, sts = states(kind, layer(x, hx_arg(kind, hs), lengths=lens))
    ((out * Tensor(w_out)).sum() + sum((s * Tensor(w_st)).sum() for s in sts)).backward()
    for b, n in enumerate(lens):
        np.testing.assert_array_equal(out.data[n:, b], 0.0)
        if n == 0:  # an empty row keeps its initial state and gets no input gradient
            for s, h in zip(sts, hs):
                np.testing.assert_array_equal(s.data[:, b], h.data[:, b])
            np.testing.assert_array_equal(x.grad[:, b], 0.0)
            continue
        xb = Tensor(x.data[:n, b:b + 1].copy(), requires_grad=True)
        hb = [Tensor(h.data[:, b:b + 1].copy(), requires_grad=True) for h in hs]
        out_b, sts_b = states(kind, layer(xb, hx_arg(kind, hb)))
        np.testing.assert_allclose(out.data[:n, b], out_b.data[:, 0], rtol=1e-12, atol=1e-12)
        for s, sb in zip(sts, sts_b):
            np.testing.assert_allclose(s.data[:, b], sb.data[:, 0], rtol=1e-12, atol=1e-12)
        loss_b = (out_b * Tensor(w_out[:n, b:b + 1])).sum() + sum(
            (s * Tensor(w_st[:, b:b + 1])).sum() for s in sts_b)
        loss_b.backward()
        np.testing.assert_allclose(x.grad[:n, b], xb.grad[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(x.grad[n:, b], 0.0)
        for h, h_b in zip(hs, hb):
            np.testing.assert_allclose(h.grad[:, b], h_b.grad[:, 0], rtol=1e-10, atol=1e-12)


# ---- truncated BPTT ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("fused", PATHS)
def test_truncated_bptt_in_chunks(kind, fused):
    T, B, I, H, chunk = 6, 2, 3, 4, 3
    rng = np.random.default_rng(2)
    layer = make(kind, I, H, num_layers=2, fused=fused, rng=rng)
    x = rng.standard_normal((T, B, I))
    full_out, full_st = states(kind, layer(Tensor(x)))
    # 1. chunked forward, carrying the detached state, equals the full forward
    outs, carried, leaves = [], None, []
    for start in range(0, T, chunk):
        xc = Tensor(x[start:start + chunk], requires_grad=True)
        leaves.append(xc)
        out, sts = states(kind, layer(xc, carried))
        outs.append(out)
        carried = hx_arg(kind, [s.detach() for s in sts])
    np.testing.assert_allclose(np.concatenate([o.data for o in outs]), full_out.data,
                               rtol=1e-12, atol=1e-12)
    for s, f in zip(carried if kind.startswith("lstm") else [carried], full_st):
        np.testing.assert_allclose(s.data, f.data, rtol=1e-12, atol=1e-12)
    # 2. the last chunk's loss reaches only its own chunk: nothing flows to the first one
    outs[-1].sum().backward()
    assert leaves[0].grad is None
    assert np.abs(leaves[1].grad).max() > 0
    # 3. without the detach the same loss does reach the first chunk (the test can fail)
    x0 = Tensor(x[:chunk], requires_grad=True)
    _, sts = states(kind, layer(x0))
    out2, _ = states(kind, layer(Tensor(x[chunk:]), hx_arg(kind, sts)))
    out2.sum().backward()
    assert np.abs(x0.grad).max() > 0


# ---- dropout ------------------------------------------------------------------------------------
def test_dropout_only_between_layers_in_training():
    rng = np.random.default_rng(4)
    layer = nn.LSTM(3, 5, num_layers=2, dropout=0.5, dtype=np.float64, fused=False, rng=1)
    plain = nn.LSTM(3, 5, num_layers=2, dtype=np.float64, fused=False)
    plain.load_state_dict(layer.state_dict())
    x = Tensor(rng.standard_normal((4, 2, 3)))
    layer.eval()
    np.testing.assert_array_equal(layer(x)[0].data, plain(x)[0].data)
    layer.train()
    out, (h_n, _) = layer(x)
    out_again, _ = layer(x)
    assert not np.allclose(out.data, plain(x)[0].data)
    assert not np.allclose(out.data, out_again.data)  # a fresh mask each call
    np.testing.assert_array_equal(out.data[-1], h_n.data[-1])  # nothing after the last layer
    np.testing.assert_array_equal(h_n.data[0], plain(x)[1][0].data[0])  # layer 0 untouched
    one = nn.GRU(3, 5, num_layers=1, dropout=0.5, dtype=np.float64, fused=False, rng=1)
    one_plain = nn.GRU(3, 5, dtype=np.float64, fused=False)
    one_plain.load_state_dict(one.state_dict())
    np.testing.assert_array_equal(one(x)[0].data, one_plain(x)[0].data)


def test_seeding_weights_and_dropout_masks():
    x = Tensor(np.ones((3, 2, 2)))
    runs = []
    for _ in range(2):
        mg.manual_seed(3)
        layer = nn.GRU(2, 3, num_layers=2, dropout=0.5, dtype=np.float64, fused=False)
        runs.append((layer.state_dict(), layer(x)[0].data))
    for key in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][key], runs[1][0][key])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    bound = 1 / np.sqrt(3)
    assert all(np.abs(v).max() <= bound for v in runs[0][0].values())
    seeded = [nn.LSTM(2, 3, rng=8).weight_hh_l0.data for _ in range(2)]
    np.testing.assert_array_equal(*seeded)
    assert not np.array_equal(seeded[0], nn.LSTM(2, 3, rng=9).weight_hh_l0.data)


# ---- recorded hidden-state gradients ---------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", PATHS)
def test_hidden_grads_match_finite_differences(kind, fused):
    """dL/dh_t recorded by backward equals central differences of the loss with h_t perturbed
    (the loss after step t re-run from the perturbed state)."""
    T, B, I, H = 4, 2, 2, 3
    rng = np.random.default_rng(9)
    layer = make(kind, I, H, fused=fused, rng=rng, record_hidden_grads=True)
    lstm = kind.startswith("lstm")
    x = rng.standard_normal((T, B, I))
    lens = np.array([4, 2])
    w_out, w_h, w_c = (rng.standard_normal(s) for s in ((T, B, H), (1, B, H), (1, B, H)))
    out, sts = states(kind, layer(Tensor(x), lengths=lens))
    loss = (out * Tensor(w_out)).sum() + (sts[0] * Tensor(w_h)).sum()
    if lstm:
        loss = loss + (sts[1] * Tensor(w_c)).sum()
    loss.backward()
    got = layer.hidden_grads[0]
    assert len(layer.hidden_grads) == 1 and got.shape == (T, B, H)

    def loss_after(t, h, c):
        """The part of the loss that depends on h_t = h (rows still running at t)."""
        total = (w_out[t] * h).sum()
        if t == T - 1:
            return total + (w_h[0] * h).sum() + ((w_c[0] * c).sum() if lstm else 0.0)
        hx = (Tensor(h[None]), Tensor(c[None])) if lstm else Tensor(h[None])
        o, s = states(kind, layer(Tensor(x[t + 1:]), hx, lengths=np.maximum(lens - t - 1, 0)))
        total += (w_out[t + 1:] * o.data).sum() + (w_h * s[0].data).sum()
        return total + ((w_c * s[1].data).sum() if lstm else 0.0)

    eps = 1e-6
    with mg.no_grad():
        for t in range(T):
            _, s = states(kind, layer(Tensor(x[:t + 1]), lengths=np.minimum(lens, t + 1)))
            h, c = s[0].data[0], (s[1].data[0] if lstm else None)
            for b in range(B):
                if t >= lens[b]:
                    np.testing.assert_array_equal(got[t, b], 0.0)
                    continue
                for j in range(H):
                    hp, hm = h.copy(), h.copy()
                    hp[b, j] += eps
                    hm[b, j] -= eps
                    fd = (loss_after(t, hp, c) - loss_after(t, hm, c)) / (2 * eps)
                    assert abs(got[t, b, j] - fd) < 1e-6 * max(1.0, abs(fd)), (t, b, j)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("fused", PATHS)
def test_hidden_grads_reverse_direction_and_layers(kind, fused):
    """The reverse direction's dL/dh_t equals the forward direction's on the time-flipped
    input (same weights); the list holds one (T, B, H) array per (layer, direction)."""
    T, B, I, H = 5, 2, 3, 2
    rng = np.random.default_rng(5)
    bi = make(kind, I, H, num_layers=2, bidirectional=True, fused=fused, rng=rng,
              record_hidden_grads=True)
    x = rng.standard_normal((T, B, I))
    w_out = rng.standard_normal((T, B, 2 * H))
    out, _ = states(kind, bi(Tensor(x)))
    (out * Tensor(w_out)).sum().backward()
    assert [g.shape for g in bi.hidden_grads] == [(T, B, H)] * 4
    assert all(np.abs(g).max() > 0 for g in bi.hidden_grads)
    # a one-layer reverse copy: loss = w . out of layer 0 only
    uni = make(kind, I, H, fused=fused, record_hidden_grads=True)
    bi1 = make(kind, I, H, bidirectional=True, fused=fused, record_hidden_grads=True)
    bi1.load_state_dict({k: v for k, v in bi.state_dict().items() if "_l0" in k})
    uni.load_state_dict({k.replace("_reverse", ""): v for k, v in bi1.state_dict().items()
                         if k.endswith("_reverse")})
    o1, _ = states(kind, bi1(Tensor(x)))
    (o1 * Tensor(w_out)).sum().backward()
    o2, _ = states(kind, uni(Tensor(x[::-1].copy())))
    (o2 * Tensor(w_out[::-1, :, H:].copy())).sum().backward()
    np.testing.assert_allclose(bi1.hidden_grads[1], uni.hidden_grads[0][::-1], rtol=1e-10,
                               atol=1e-12)


# ---- errors -------------------------------------------------------------------------------------
def test_errors_name_the_layer_and_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2, fused=False)
    x = Tensor(np.zeros((5, 2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"LSTM: expected input of rank 3.*\(7,\)"):
        lstm(Tensor(np.zeros(7, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"LSTM: input has 6 features \(shape \(5, 2, 6\)\).*"
                                         r"input_size=3"):
        lstm(Tensor(np.zeros((5, 2, 6), dtype=np.float32)))
    h = Tensor(np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"LSTM: h_0 has shape \(2, 3, 4\), expected "
                                         r"\(2, 2, 4\)"):
        lstm(x, (h, h))
    with pytest.raises(ValueError, match="LSTM: hx must be a pair"):
        lstm(x, h)
    gru = nn.GRU(3, 4, bidirectional=True, fused=False)
    with pytest.raises(ValueError, match=r"GRU: hx has shape \(1, 2, 4\), expected \(2, 2, 4\)"):
        gru(x, Tensor(np.zeros((1, 2, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"GRU: lengths must hold one int per batch row \(2\), "
                                         r"got shape \(3,\)"):
        gru(x, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"GRU: lengths must lie in \[0, 5\].*\[6, 1\]"):
        gru(x, lengths=[6, 1])
    with pytest.raises(ValueError, match=r"RNN: lengths must lie in \[0, 5\].*\[-1, 1\]"):
        nn.RNN(3, 4)(x, lengths=np.array([-1, 1]))
    with pytest.raises(TypeError, match=r"RNN: input dtype float64 differs.*float32"):
        nn.RNN(3, 4)(Tensor(np.zeros((5, 2, 3))))
    with pytest.raises(ValueError, match=r"RNN: nonlinearity must be"):
        nn.RNN(3, 4, nonlinearity="gelu")


# ---- the fused switch -----------------------------------------------------------------------
def test_global_switch_and_per_layer_override():
    x = Tensor(np.ones((3, 2, 2), dtype=np.float32))
    layer, graph = nn.LSTM(2, 3), nn.LSTM(2, 3, fused=False)
    with rnn.use_fused(False):
        assert not rnn.get_fused_default()
        assert layer(x)[0].grad_fn.op == "stack"
    assert rnn.get_fused_default()
    assert graph(x)[0].grad_fn.op == "stack"
    assert layer(x)[0].grad_fn.op == "lstm_sequence"  # the library default is the fused path
    assert nn.LSTM(2, 3, fused=True)(x)[0].grad_fn.op == "lstm_sequence"
    rnn.set_fused_default(False)
    try:
        assert layer(x)[0].grad_fn.op == "stack"
    finally:
        rnn.set_fused_default(True)


# ---- gradcheck ----------------------------------------------------------------------------------
CONFIGS = {
    "plain": dict(num_layers=1),
    "deep_bidir_lengths_bf": dict(num_layers=2, bidirectional=True, batch_first=True,
                                  lengths=[3, 1]),
    "bidir_nobias_lengths": dict(num_layers=1, bidirectional=True, bias=False, lengths=[2, 0]),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("fused", PATHS)
def test_sequence_gradcheck(kind, config, fused):
    cfg = dict(CONFIGS[config])
    lengths = cfg.pop("lengths", None)
    T, B, I, H = 3, 2, 2, 2
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{config}".encode()))
    layer = make(kind, I, H, fused=fused, rng=rng, **cfg)
    n = layer.num_layers * layer.num_directions
    names = [name for name, _ in layer.named_parameters()]
    params = [Tensor(p.data.copy(), requires_grad=True) for _, p in layer.named_parameters()]
    x = Tensor(rng.standard_normal((B, T, I) if layer.batch_first else (T, B, I)),
               requires_grad=True)
    hs = [Tensor(rng.standard_normal((n, B, H)) * 0.5, requires_grad=True)
          for _ in range(2 if kind.startswith("lstm") else 1)]
    k = len(hs)

    def fn(x, *rest):
        with swapped(layer, names, rest[k:]):
            out, sts = states(kind, layer(x, hx_arg(kind, list(rest[:k])), lengths=lengths))
        return (out, *sts)

    assert mg.gradcheck(fn, [x, *hs, *params], atol=1e-6, rtol=1e-4)
