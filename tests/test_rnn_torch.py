"""RNN, LSTM and GRU against PyTorch (float64, weights copied from torch's modules): outputs,
final states and gradients of the input, the initial states and every parameter, on both
paths; variable lengths against pack_padded_sequence(enforce_sorted=False)."""
from __future__ import annotations

import numpy as np
import pytest

from minigrad import Tensor, nn

torch = pytest.importorskip("torch")

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
PATHS = [pytest.param(False, id="graph"), pytest.param(True, id="fused")]
TOL = dict(rtol=1e-9, atol=1e-11)


def pair(kind: str, isz: int, hsz: int, fused: bool, **kw):
    """A torch module and a minigrad layer holding the same (torch-initialised) weights."""
    if kind.startswith("rnn"):
        t = torch.nn.RNN(isz, hsz, nonlinearity=kind[4:], dtype=torch.float64, **kw)
        m = nn.RNN(isz, hsz, nonlinearity=kind[4:], dtype=np.float64, fused=fused, **kw)
    elif kind == "lstm":
        t = torch.nn.LSTM(isz, hsz, dtype=torch.float64, **kw)
        m = nn.LSTM(isz, hsz, dtype=np.float64, fused=fused, **kw)
    else:
        t = torch.nn.GRU(isz, hsz, dtype=torch.float64, **kw)
        m = nn.GRU(isz, hsz, dtype=np.float64, fused=fused, **kw)
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return t, m


def run_both(kind, t_mod, m_mod, x, hs, w_out, w_st, lengths=None, batch_first=False):
    """Forward and backward of loss = w_out . output + sum_k w_st . state_k in both
    libraries; returns the two dicts of results (outputs, states, gradients)."""
    lstm = kind == "lstm"
    xt = torch.tensor(x, requires_grad=True)
    ht = [torch.tensor(h, requires_grad=True) for h in hs]
    if lengths is None:
        out_t, st_t = t_mod(xt, tuple(ht) if lstm else ht[0])
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        out_p, st_t = t_mod(packed, tuple(ht) if lstm else ht[0])
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out_p, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    st_t = list(st_t) if lstm else [st_t]
    loss = (out_t * torch.tensor(w_out)).sum() + sum((s * torch.tensor(w_st)).sum()
                                                     for s in st_t)
    loss.backward()
    torch_res = {"output": out_t.detach().numpy(), "x.grad": xt.grad.numpy()}
    torch_res.update({f"state{i}": s.detach().numpy() for i, s in enumerate(st_t)})
    torch_res.update({f"state{i}.grad": h.grad.numpy() for i, h in enumerate(ht)})
    torch_res.update({n: p.grad.numpy() for n, p in t_mod.named_parameters()})

    xm = Tensor(x.copy(), requires_grad=True)
    hm = [Tensor(h.copy(), requires_grad=True) for h in hs]
    out_m, st_m = m_mod(xm, tuple(hm) if lstm else hm[0], lengths=lengths)
    st_m = list(st_m) if lstm else [st_m]
    loss = (out_m * Tensor(w_out)).sum() + sum((s * Tensor(w_st)).sum() for s in st_m)
    loss.backward()
    mg_res = {"output": out_m.data, "x.grad": xm.grad}
    mg_res.update({f"state{i}": s.data for i, s in enumerate(st_m)})
    mg_res.update({f"state{i}.grad": h.grad for i, h in enumerate(hm)})
    mg_res.update({n: p.grad for n, p in m_mod.named_parameters()})
    return torch_res, mg_res


def assert_same(torch_res, mg_res):
    assert torch_res.keys() == mg_res.keys()
    for key, want in torch_res.items():
        assert mg_res[key] is not None, key
        np.testing.assert_allclose(mg_res[key], want, err_msg=key, **TOL)


def inputs(rng, kind, T, B, I, H, n_states, batch_first, D):
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    hs = [rng.standard_normal((n_states, B, H)) * 0.5
          for _ in range(2 if kind == "lstm" else 1)]
    w_out = rng.standard_normal((B, T, D * H) if batch_first else (T, B, D * H))
    w_st = rng.standard_normal((n_states, B, H))
    return x, hs, w_out, w_st


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("fused", PATHS)
def test_matches_torch(kind, layers, bidir, batch_first, fused):
    T, B, I, H = 5, 3, 4, 3
    D = 2 if bidir else 1
    rng = np.random.default_rng(layers * 4 + bidir * 2 + batch_first)
    torch.manual_seed(int(rng.integers(1 << 30)))
    t_mod, m_mod = pair(kind, I, H, fused, num_layers=layers, bidirectional=bidir,
                        batch_first=batch_first)
    x, hs, w_out, w_st = inputs(rng, kind, T, B, I, H, layers * D, batch_first, D)
    assert_same(*run_both(kind, t_mod, m_mod, x, hs, w_out, w_st))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("fused", PATHS)
def test_lengths_match_pack_padded_sequence(kind, bidir, batch_first, fused):
    T, B, I, H, layers = 6, 4, 3, 3, 2
    D = 2 if bidir else 1
    rng = np.random.default_rng(11 + bidir * 2 + batch_first)
    torch.manual_seed(int(rng.integers(1 << 30)))
    t_mod, m_mod = pair(kind, I, H, fused, num_layers=layers, bidirectional=bidir,
                        batch_first=batch_first)
    x, hs, w_out, w_st = inputs(rng, kind, T, B, I, H, layers * D, batch_first, D)
    lengths = [3, 6, 1, 4]  # unsorted: enforce_sorted=False on torch's side
    torch_res, mg_res = run_both(kind, t_mod, m_mod, x, hs, w_out, w_st, lengths=lengths,
                                 batch_first=batch_first)
    out = mg_res["output"] if batch_first else mg_res["output"].transpose(1, 0, 2)
    for b, n in enumerate(lengths):
        assert np.all(out[b, n:] == 0.0)
    assert_same(torch_res, mg_res)


def test_weights_copy_from_minigrad_into_torch():
    """Weights copy the other way too: a minigrad state_dict loads into torch unchanged."""
    m = nn.LSTM(3, 2, num_layers=2, bidirectional=True, dtype=np.float64, rng=3, fused=False)
    t = torch.nn.LSTM(3, 2, num_layers=2, bidirectional=True, dtype=torch.float64)
    t.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()}, strict=True)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    out_t, _ = t(torch.tensor(x))
    np.testing.assert_allclose(m(Tensor(x))[0].data, out_t.detach().numpy(), **TOL)
