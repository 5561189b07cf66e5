"""F.scaled_dot_product_attention, F.masked_softmax and nn.Attention: gradcheck in float64
with masks (hypothesis shapes), values and gradients against PyTorch (its
scaled_dot_product_attention, and the additive / dot / general formulas written in torch ops),
exactly zero weight and gradient on masked positions, zeros for a row with nothing to attend."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import Tensor, nn

from strategies import floats

RNG = np.random.default_rng(17)


def leaf(a):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def random_mask(rng, shape, empty_row=True):
    m = rng.random(shape) > 0.4
    if empty_row and m.ndim >= 2:
        m.reshape(-1, m.shape[-1])[0] = False       # one row attends to nothing
    return m


@st.composite
def sdpa_case(draw):
    batch = draw(st.lists(st.integers(1, 2), min_size=0, max_size=2))
    L, S, E, Ev = (draw(st.integers(1, 3)) for _ in range(4))
    q = draw(floats((*batch, L, E), -2, 2))
    k = draw(floats((*batch, S, E), -2, 2))
    v = draw(floats((*batch, S, Ev), -2, 2))
    mask = draw(st.none() | st.just(tuple(batch) + (L, S)).flatmap(
        lambda sh: st.lists(st.booleans(), min_size=int(np.prod(sh)),
                            max_size=int(np.prod(sh))).map(
            lambda b: np.array(b, dtype=bool).reshape(sh))))
    return q, k, v, mask


@given(sdpa_case())
def test_sdpa_gradcheck(case):
    q, k, v, mask = case
    assert mg.gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=mask),
                        [leaf(q), leaf(k), leaf(v)])


def test_sdpa_negative_control_wrong_scale_fails():
    # gradcheck must notice a backward that disagrees with the forward
    q, k, v = (leaf(RNG.standard_normal(s)) for s in [(2, 3), (4, 3), (4, 2)])

    class Bad(mg.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, g):
            return g * 3.0

    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(lambda a, b, c: F.scaled_dot_product_attention(Bad.apply(a), b, c),
                     [q, k, v])


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
@given(data=st.data())
def test_attention_gradcheck(kind, data):
    B, S, Q = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), 3
    K = Q if kind == "dot" else data.draw(st.integers(1, 3))
    T = data.draw(st.none() | st.integers(1, 3))
    att = nn.Attention(Q, K, kind=kind, attn_size=2, dtype=np.float64,
                       rng=np.random.default_rng(0))
    q = leaf(data.draw(floats((B, Q) if T is None else (B, T, Q), -2, 2)))
    keys = leaf(data.draw(floats((B, S, K), -2, 2)))
    vals = leaf(data.draw(floats((B, S, 2), -2, 2)))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=B * S, max_size=B * S)),
                    dtype=bool).reshape(B, S)
    params = list(att.parameters())

    def fn(q, keys, vals, *ps):
        with swapped_params(att, ps):
            ctx, w = att(q, keys, vals, mask=mask)
        return ctx.sum() + (w * Tensor(np.linspace(0.5, 1.5, w.numel()).reshape(w.shape))).sum()

    assert mg.gradcheck(fn, [q, keys, vals, *[leaf(p.data) for p in params]])


class swapped_params:
    """Run a module with the given tensors in place of its parameters (in order)."""

    def __init__(self, module, tensors):
        self.module, self.tensors = module, tensors

    def __enter__(self):
        self.saved = []
        for (name, _), t in zip(self.module.named_parameters(), self.tensors):
            owner = self.module
            *path, attr = name.split(".")
            for p in path:
                owner = getattr(owner, p)
            self.saved.append((owner, attr, getattr(owner, attr)))
            object.__setattr__(owner, attr, t)

    def __exit__(self, *exc):
        for owner, attr, old in self.saved:
            object.__setattr__(owner, attr, old)


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
@pytest.mark.parametrize("query_steps", [None, 3])
def test_attention_masked_weights_exactly_zero(kind, query_steps):
    B, S, H = 3, 5, 4
    att = nn.Attention(H, kind=kind, rng=np.random.default_rng(1))
    qshape = (B, H) if query_steps is None else (B, query_steps, H)
    q = Tensor(RNG.standard_normal(qshape).astype(np.float32), requires_grad=True)
    keys = Tensor(RNG.standard_normal((B, S, H)).astype(np.float32), requires_grad=True)
    vals = Tensor(RNG.standard_normal((B, S, 2)).astype(np.float32), requires_grad=True)
    lengths = np.array([5, 2, 0])
    mask = np.arange(S)[None, :] < lengths[:, None]
    ctx, w = att(q, keys, vals, mask=mask)
    wm = w.data if query_steps is None else w.data.transpose(1, 0, 2)   # (..., B, S)
    assert np.all(wm[..., ~mask] == 0.0)
    np.testing.assert_allclose(wm[..., :2, :].sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(w.data[2] == 0.0) and np.all(ctx.data[2] == 0.0)   # all-False row: zeros
    assert np.all(np.isfinite(ctx.data))
    (ctx.sum() + (w * w).sum()).backward()
    for t in (keys, vals):
        assert np.all(t.grad[~mask] == 0.0)
        assert np.all(np.isfinite(t.grad))
    assert np.all(q.grad[2] == 0.0)


def test_masked_softmax_gradient_zero_on_masked_scores():
    s = leaf(RNG.standard_normal((3, 4)) * 50)
    mask = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 0]], dtype=bool)
    w = F.masked_softmax(s, mask)
    (w * Tensor(RNG.standard_normal((3, 4)))).sum().backward()
    assert np.all(w.data[~mask] == 0) and np.all(s.grad[~mask] == 0)
    np.testing.assert_allclose(w.data[[0, 2]].sum(axis=1), 1.0)


def test_bad_inputs_name_the_operation():
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 2))),
                                       Tensor(np.zeros((4, 2))))
    with pytest.raises(ValueError, match="attn_mask"):
        F.scaled_dot_product_attention(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 3))),
                                       Tensor(np.zeros((4, 2))), attn_mask=np.ones((3, 4), bool))
    att = nn.Attention(4, kind="general")
    with pytest.raises(ValueError, match="Attention: mask"):
        att(Tensor(np.zeros((2, 4), np.float32)), Tensor(np.zeros((2, 3, 4), np.float32)),
            mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="Attention: query"):
        att(Tensor(np.zeros((3, 4), np.float32)), Tensor(np.zeros((2, 3, 4), np.float32)))
    with pytest.raises(ValueError, match="kind='dot'"):
        nn.Attention(4, 5, kind="dot")
    with pytest.raises(ValueError, match="kind must be"):
        nn.Attention(4, kind="bilinear")


# ---- against PyTorch ----------------------------------------------------------------------
def _run_both(mg_fn, torch_fn, arrays, torch):
    mx = [leaf(a) for a in arrays]
    tx = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    mo, to = mg_fn(*mx), torch_fn(*tx)
    mo, to = (mo if isinstance(mo, tuple) else (mo,)), (to if isinstance(to, tuple) else (to,))
    total_m, total_t = None, None
    for m, t in zip(mo, to):
        np.testing.assert_allclose(m.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
        w = RNG.standard_normal(m.shape)
        pm, pt = (m * Tensor(w)).sum(), (t * torch.tensor(w)).sum()
        total_m = pm if total_m is None else total_m + pm
        total_t = pt if total_t is None else total_t + pt
    total_m.backward()
    total_t.backward()
    for k, (m, t) in enumerate(zip(mx, tx)):
        tg = np.zeros(m.shape) if t.grad is None else t.grad.numpy()
        mgrad = np.zeros(m.shape) if m.grad is None else m.grad
        np.testing.assert_allclose(mgrad, tg, rtol=1e-9, atol=1e-12, err_msg=f"input {k}")


@pytest.mark.parametrize("mask_kind", ["none", "bool", "bool_broadcast", "float", "causal",
                                       "scale"])
def test_sdpa_matches_torch(mask_kind):
    torch = pytest.importorskip("torch")
    q, k, v = (RNG.standard_normal(s) for s in [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2)])
    kw = {}
    if mask_kind == "bool":
        kw["attn_mask"] = random_mask(RNG, (2, 3, 4, 6))   # includes a fully masked row
    elif mask_kind == "bool_broadcast":
        kw["attn_mask"] = random_mask(RNG, (4, 6), empty_row=False)
    elif mask_kind == "float":
        kw["attn_mask"] = RNG.standard_normal((4, 6))
    elif mask_kind == "causal":
        kw["is_causal"] = True
    elif mask_kind == "scale":
        kw["scale"] = 0.3
    tkw = {key: (torch.tensor(val) if isinstance(val, np.ndarray) else val)
           for key, val in kw.items()}
    _run_both(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kw),
              lambda a, b, c: torch.nn.functional.scaled_dot_product_attention(a, b, c, **tkw),
              [q, k, v], torch)


def _torch_attention(torch, att, kind, q, keys, vals, mask):
    """nn.Attention's formulas written directly in torch ops (weights from the module)."""
    p = {n: torch.tensor(t.data) for n, t in att.named_parameters()}
    single = q.dim() == 2
    q3 = q[:, None, :] if single else q
    if kind == "additive":
        hidden = torch.tanh((q3 @ p["query_proj.weight"].T)[:, :, None, :]
                            + (keys @ p["key_proj.weight"].T + p["key_proj.bias"])[:, None])
        scores = (hidden @ p["score.weight"].T)[..., 0]
    elif kind == "general":
        scores = q3 @ (keys @ p["key_proj.weight"].T).transpose(1, 2)
    else:
        scores = q3 @ keys.transpose(1, 2)
    m = torch.tensor(mask)[:, None, :]
    w = torch.softmax(scores.masked_fill(~m, float("-inf")), dim=-1)
    w = torch.nan_to_num(w, nan=0.0)           # a row with no real step: zeros
    ctx = w @ vals
    return (ctx[:, 0], w[:, 0]) if single else (ctx, w)


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
@pytest.mark.parametrize("query_steps", [None, 3])
def test_attention_matches_torch_formulas(kind, query_steps):
    torch = pytest.importorskip("torch")
    B, S, Q = 3, 5, 4
    K = Q if kind == "dot" else 6
    att = nn.Attention(Q, K, kind=kind, attn_size=7, dtype=np.float64,
                       rng=np.random.default_rng(3))
    mask = np.arange(S)[None, :] < np.array([5, 3, 0])[:, None]
    q = RNG.standard_normal((B, Q) if query_steps is None else (B, query_steps, Q))
    keys, vals = RNG.standard_normal((B, S, K)), RNG.standard_normal((B, S, 2))
    _run_both(lambda a, b, c: att(a, b, c, mask=mask),
              lambda a, b, c: _torch_attention(torch, att, kind, a, b, c, mask),
              [q, keys, vals], torch)
    if kind == "dot":
        return                                    # no parameters
    # parameter gradients against torch's, through the same formulas
    tparams = {n: torch.tensor(t.data, requires_grad=True) for n, t in att.named_parameters()}
    for n, t in att.named_parameters():
        t.grad = None
    mctx, mw = att(Tensor(q), Tensor(keys), Tensor(vals), mask=mask)
    (mctx.sum() + (mw * mw).sum()).backward()
    # the same formulas in torch with grad-tracking parameters
    p = tparams
    tq, tk, tv = (torch.tensor(a) for a in (q, keys, vals))
    tq3 = tq[:, None, :] if query_steps is None else tq
    if kind == "additive":
        hidden = torch.tanh((tq3 @ p["query_proj.weight"].T)[:, :, None, :]
                            + (tk @ p["key_proj.weight"].T + p["key_proj.bias"])[:, None])
        scores = (hidden @ p["score.weight"].T)[..., 0]
    elif kind == "general":
        scores = tq3 @ (tk @ p["key_proj.weight"].T).transpose(1, 2)
    else:
        scores = tq3 @ tk.transpose(1, 2)
    w = torch.nan_to_num(torch.softmax(scores.masked_fill(~torch.tensor(mask)[:, None, :],
                                                          float("-inf")), dim=-1), nan=0.0)
    ((w @ tv).sum() + (w * w).sum()).backward()
    for n, t in att.named_parameters():
        np.testing.assert_allclose(t.grad, p[n].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=n)
