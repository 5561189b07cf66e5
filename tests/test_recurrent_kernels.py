"""The fused recurrent kernels (src_ext/{rnn,lstm,gru}_kernels.pyx) and minigrad.fast.fused.

1. each compiled kernel equals its numpy twin in minigrad/fast/_reference_rnn.py, forward and every
   backward output, for every cell configuration, with and without lengths, both directions;
2. bad arguments (non-contiguous, mixed dtypes, wrong shapes, lengths) raise ValueError;
3. each fused Function passes gradcheck (central differences) in float64, both backends;
4. hidden_grad_sink receives dL/dh_t, checked against zero perturbations added to h_t in a
   step-by-step graph of primitives;
5. semantics: forward equals torch.nn.{RNN,LSTM,GRU}, and reverse-with-lengths equals the
   forward direction run on each row's reversed prefix.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import Tensor
from minigrad.fast import _reference_rnn, kernels
from minigrad.fast import fused

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_peep", "gru"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "lstm_peep": 4, "gru": 3}
MODULE = {"rnn_tanh": "rnn", "rnn_relu": "rnn", "lstm": "lstm", "lstm_peep": "lstm", "gru": "gru"}
TOL = {np.float32: 1e-5, np.float64: 1e-10}


def compiled(cell: str, build: str | None = None):
    """The compiled kernel module for a cell: the build minigrad.fast.kernels dispatches to (the
    AVX-512 one on CPUs that run it), or ``build`` = '' (portable) or '_avx512'."""
    if build is None:
        if kernels.COMPILED is None:
            pytest.skip("the compiled extension is not built")
        return getattr(kernels.COMPILED, MODULE[cell])
    return importlib.import_module(f"minigrad._ext.{MODULE[cell]}_kernels{build}")


def make_args(cell, T, B, I, H, dtype, seed, bias=True):
    rng = np.random.default_rng(seed)
    m = lambda *s: (rng.standard_normal(s) * 0.5).astype(dtype)  # noqa: E731
    G = GATES[cell]
    a = dict(x=m(T, B, I), h0=m(B, H), c0=m(B, H), w_ih=m(G * H, I), w_hh=m(G * H, H),
             b_ih=m(G * H) if bias else None, b_hh=m(G * H) if bias else None,
             w_peep=m(3, H) if cell == "lstm_peep" else None)
    grads = dict(grad_out=m(T, B, H), grad_hn=m(B, H), grad_cn=m(B, H))
    return a, grads


def run_kernels(mod, cell, a, g, lengths, reverse, needs=(True, True, True)):
    """Forward then backward through one kernel module; every output in a flat tuple."""
    if MODULE[cell] == "lstm":
        out, hn, cn, cache = mod.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"],
                                              a["b_ih"], a["b_hh"], a["w_peep"], lengths, reverse)
        back = mod.lstm_backward(g["grad_out"], g["grad_hn"], g["grad_cn"], a["x"], a["w_ih"],
                                 a["w_hh"], a["w_peep"], lengths, reverse, cache, needs)
        return (out, hn, cn) + tuple(back)
    if cell == "gru":
        out, hn, cache = mod.gru_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"],
                                         a["b_hh"], lengths, reverse)
        back = mod.gru_backward(g["grad_out"], g["grad_hn"], a["x"], a["w_ih"], a["w_hh"],
                                lengths, reverse, cache, needs)
        return (out, hn) + tuple(back)
    relu = cell == "rnn_relu"
    out, hn, cache = mod.rnn_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"],
                                     a["b_hh"], lengths, reverse, relu)
    back = mod.rnn_backward(g["grad_out"], g["grad_hn"], a["x"], a["w_ih"], a["w_hh"], lengths,
                            reverse, relu, cache, needs)
    return (out, hn) + tuple(back)


def assert_workers_give_the_twins_outputs(cell, a, g, lengths, reverse, workers, tol,
                                          build=None):
    """The compiled kernels (``build``, see compiled()) run by ``workers`` workers give what the
    single-threaded numpy twin gives, to ``tol``."""
    before = mg.get_num_threads()
    mg.set_num_threads(workers)
    try:
        got = run_kernels(compiled(cell, build), cell, a, g, lengths, reverse)
    finally:
        mg.set_num_threads(before)
    want = run_kernels(_reference_rnn, cell, a, g, lengths, reverse)
    assert len(got) == len(want)
    for k, (u, v) in enumerate(zip(got, want)):
        if v is None:
            assert u is None, f"output {k}"
        else:
            np.testing.assert_allclose(u, v, rtol=tol, atol=tol, err_msg=f"output {k}")


# ---------------------------------------------------------------- 1. compiled == twin -------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", CELLS)
@given(T=st.integers(0, 6), B=st.integers(1, 4), I=st.integers(1, 4), H=st.integers(1, 5),
       lens=st.one_of(st.none(), st.lists(st.floats(0, 1), min_size=4, max_size=4)),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_compiled_equals_twin(cell, reverse, dtype, T, B, I, H, lens, bias, seed):
    a, g = make_args(cell, T, B, I, H, dtype, seed, bias)
    lengths = None if lens is None else np.array([round(f * T) for f in lens[:B]], np.int64)
    got = run_kernels(compiled(cell), cell, a, g, lengths, reverse)
    want = run_kernels(_reference_rnn, cell, a, g, lengths, reverse)
    assert len(got) == len(want)
    for k, (u, v) in enumerate(zip(got, want)):
        if v is None:
            assert u is None, f"output {k}"
            continue
        assert u.dtype == v.dtype and u.shape == v.shape, f"output {k}"
        np.testing.assert_allclose(u, v, rtol=TOL[dtype], atol=TOL[dtype], err_msg=f"output {k}")


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("cell", CELLS)
@given(T=st.integers(1, 5), B=st.integers(1, 26), H=st.integers(1, 5),
       lens=st.one_of(st.none(), st.lists(st.floats(0, 1), min_size=26, max_size=26)),
       reverse=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_worker_threads_split_the_batch_and_equal_the_twin(cell, workers, T, B, H, lens,
                                                           reverse, dtype, seed):
    """Several workers (each a share of the batch rows, and of the products' rows) give what
    the single-threaded twin gives, uneven splits included (one worker per started block of 8
    rows, so B > 8 is needed for two workers)."""
    a, g = make_args(cell, T, B, 3, H, dtype, seed)
    lengths = None if lens is None else np.array([round(f * T) for f in lens[:B]], np.int64)
    assert_workers_give_the_twins_outputs(cell, a, g, lengths, reverse, workers, TOL[dtype])


def _cpu_has(flags: tuple[str, ...]) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            words = set(f.read().split())
    except OSError:
        return False
    return all(flag in words for flag in flags)


@pytest.mark.skipif(not (_cpu_has(("avx512f",)) or _cpu_has(("avx2", "fma"))),
                    reason="the packed step products need AVX-512, or AVX2 with FMA")
@pytest.mark.skipif(os.environ.get("MINIGRAD_PACKED") == "0",
                    reason="MINIGRAD_PACKED=0 turns the packed step products off")
def test_packed_step_products_are_used_on_avx512_and_avx2():
    assert compiled("rnn_tanh").packed_gemm_in_use()


@pytest.mark.parametrize("build", [None, "", "_avx512"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_wide_layers_equal_the_twin(cell, dtype, build):
    """Sizes that leave partial 8-row and 32-column tiles in the step products, two workers;
    the dispatched build, the portable build and the AVX-512 build (where this CPU runs it)."""
    if build == "_avx512" and kernels.variant() != "avx512":
        pytest.skip("this CPU or platform has no AVX-512 build of the kernels")
    a, g = make_args(cell, 5, 19, 6, 37, dtype, 3)
    lengths = np.array([5, 0, 3] + [4] * 16, np.int64)
    assert_workers_give_the_twins_outputs(cell, a, g, lengths, False, 2, 2e-5, build)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_weight_gradients_on_the_avx512_tile_equal_the_twin(cell, workers):
    """H = I = 32 puts dW_hh and dW_ih on the AVX-512 tile read in place (mg_gemm_tn: whole
    8 x 32 tiles); 30 x 19 = 570 rows make three blocks of K, and 2 or 3 workers each sum
    their own rows into a partial dW (the partials added after). Where that tile cannot run,
    the same shapes go through BLAS."""
    a, g = make_args(cell, 30, 19, 32, 32, np.float32, 5)
    a["w_ih"], a["w_hh"] = a["w_ih"] * 0.2, a["w_hh"] * 0.2  # stable: float32 runs agree
    lengths = np.array([30, 0, 17] + [29] * 16, np.int64)
    assert_workers_give_the_twins_outputs(cell, a, g, lengths, True, workers, 1e-4)


def test_the_time_loops_buffers_start_at_different_offsets_in_their_pages():
    """The big per-step buffers (rnn_common.fresh) are staggered within their 4 KB pages, so
    that the loops, which walk them in step, do not stall on 4K aliasing; they still are
    C-contiguous arrays of the right dtype and shape, and writable."""
    a, _ = make_args("lstm", 64, 32, 8, 64, np.float32, 0)  # sizes that are whole pages
    *_, cache = compiled("lstm").lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"],
                                               a["b_ih"], a["b_hh"], a["w_peep"], None, False)
    offsets = [arr.__array_interface__["data"][0] % 4096 for arr in cache]
    apart = min(min(abs(u - v), 4096 - abs(u - v)) for i, u in enumerate(offsets)
                for v in offsets[i + 1:])
    assert apart >= 64, offsets  # at least a cache line (plain malloc: 16 bytes apart)
    for arr, shape in zip(cache, [(64, 32, 256), (65, 32, 64), (65, 32, 64), (64, 32, 64)]):
        assert arr.shape == shape and arr.dtype == np.float32
        assert arr.flags.c_contiguous and arr.flags.writeable


def test_blas_step_products_equal_the_twin_too():
    """With MINIGRAD_PACKED=0 the float32 steps go through BLAS (and with MINIGRAD_AVX512=0
    the portable build runs): same results."""
    code = (
        "import numpy as np, sys; sys.path.insert(0, 'tests');"
        "import test_recurrent_kernels as t; import minigrad.fast._reference_rnn as ref;"
        "assert not t.compiled('rnn_tanh').packed_gemm_in_use();"
        "[t.test_wide_layers_equal_the_twin(c, np.float32, b) for c in t.CELLS "
        "for b in (None, '')]; print('ok')")
    env = dict(os.environ, MINIGRAD_AVX512="0", MINIGRAD_PACKED="0")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=root, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_needs_skip_unneeded_products(cell):
    a, g = make_args(cell, 3, 2, 2, 3, np.float64, 0)
    for mod in (compiled(cell), _reference_rnn):
        full = run_kernels(mod, cell, a, g, None, False)
        part = run_kernels(mod, cell, a, g, None, False, needs=(False, True, False))
        dx = 3 if MODULE[cell] == "lstm" else 2  # index of dx in the flat tuple
        dw_ih = dx + (3 if MODULE[cell] == "lstm" else 2)
        assert part[dx] is None and part[dw_ih + 1] is None
        np.testing.assert_allclose(part[dw_ih], full[dw_ih])


# ---------------------------------------------------------------- 2. argument checks --------
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_bad_arguments_raise_value_error(cell, backend):
    mod = compiled(cell) if backend == "compiled" else _reference_rnn
    name = f"{MODULE[cell]}_forward"
    a, g = make_args(cell, 4, 3, 2, 5, np.float64, 0)
    bad_cases = {
        "non-contiguous x": dict(x=np.asfortranarray(a["x"])),
        "mixed dtypes": dict(w_hh=a["w_hh"].astype(np.float32)),
        "float16": {k: v.astype(np.float16) for k, v in a.items() if v is not None},
        "wrong w_hh shape": dict(w_hh=a["w_hh"][:, :4].copy()),
        "wrong h0 shape": dict(h0=a["h0"][:2].copy()),
        "list instead of ndarray": dict(b_ih=list(a["b_ih"])),
    }
    for what, change in bad_cases.items():
        with pytest.raises(ValueError, match=name):
            run_kernels(mod, cell, {**a, **change}, g, None, False)
    for lengths in (np.array([5, 1, 1]), np.array([1, -1, 2]), np.array([1, 2, 3], np.int32),
                    np.array([1, 2])):
        with pytest.raises(ValueError, match=name):
            run_kernels(mod, cell, a, g, lengths, False)
    bad_grad = {**g, "grad_out": g["grad_out"][:, :, ::-1]}
    with pytest.raises(ValueError, match=f"{MODULE[cell]}_backward"):
        run_kernels(mod, cell, a, bad_grad, None, False)


def test_fused_rejects_mixed_dtypes():
    a, _ = make_args("lstm", 2, 2, 2, 3, np.float32, 0)
    t = {k: Tensor(v) for k, v in a.items() if v is not None}
    t["w_hh"] = Tensor(a["w_hh"].astype(np.float64))
    with pytest.raises(ValueError, match="lstm_forward"):
        fused.lstm_sequence(t["x"], t["h0"], t["c0"], t["w_ih"], t["w_hh"], t["b_ih"], t["b_hh"])


# ---------------------------------------------------------------- 3. gradcheck --------------
@pytest.fixture(params=["compiled", "numpy"])
def backend(request):
    before = kernels.backend()
    kernels.use(request.param)
    yield request.param
    kernels.use(before)


def fused_call(cell, lengths, reverse, sink=None):
    """(function of tensors, names of the inputs it takes) for one cell configuration."""
    opts = dict(lengths=lengths, reverse=reverse, hidden_grad_sink=sink)
    if MODULE[cell] == "rnn":
        return (lambda x, h0, wi, wh, bi, bh: fused.rnn_sequence(
            x, h0, wi, wh, bi, bh, nonlinearity=cell[4:], **opts)), \
            ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"]
    if cell == "gru":
        return (lambda x, h0, wi, wh, bi, bh: fused.gru_sequence(x, h0, wi, wh, bi, bh, **opts)), \
            ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"]
    names = ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"]
    if cell == "lstm_peep":
        return (lambda *t: fused.lstm_sequence(*t, **opts)), names + ["w_peep"]
    return (lambda *t: fused.lstm_sequence(*t, None, **opts)), names


@pytest.mark.parametrize("lengths", [None, np.array([3, 0, 2])])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_fused_gradcheck(cell, reverse, lengths, backend):
    a, _ = make_args(cell, 3, 3, 2, 2, np.float64, seed=1)
    if cell == "rnn_relu":  # keep pre-activations away from the kink of relu
        a["b_ih"] = a["b_ih"] + 0.3
    fn, names = fused_call(cell, lengths, reverse)
    inputs = [Tensor(a[n], requires_grad=True) for n in names]
    assert mg.gradcheck(fn, inputs)


def test_gradcheck_catches_a_wrong_backward(monkeypatch):
    """Negative control: a backward that is off by 1% in dW_hh must fail gradcheck."""
    right = kernels.lstm_backward

    def wrong(*args):
        out = list(right(*args))
        out[4] = out[4] * 1.01
        return tuple(out)
    monkeypatch.setattr(kernels, "lstm_backward", wrong)
    a, _ = make_args("lstm", 3, 2, 2, 2, np.float64, seed=2)
    fn, names = fused_call("lstm", None, False)
    with pytest.raises(mg.GradcheckError, match="input 4"):
        mg.gradcheck(fn, [Tensor(a[n], requires_grad=True) for n in names])


def test_inputs_without_grad_and_no_bias(backend):
    a, _ = make_args("gru", 4, 2, 3, 3, np.float64, seed=3, bias=False)
    x, h0 = Tensor(a["x"]), Tensor(a["h0"])
    wi, wh = Tensor(a["w_ih"], requires_grad=True), Tensor(a["w_hh"], requires_grad=True)
    assert mg.gradcheck(lambda wi, wh: fused.gru_sequence(x, h0, wi, wh, None, None), [wi, wh])
    out, hn = fused.gru_sequence(x, None, wi, wh, None, None)  # h0=None means zeros
    ref, _ = fused.gru_sequence(x, Tensor(np.zeros_like(a["h0"])), wi, wh, None, None)
    np.testing.assert_array_equal(out.data, ref.data)


# ---------------------------------------------------------------- 4. hidden_grad_sink -------
def graph_step(cell, x_t, h, c, w, H):
    """One cell step as a graph of primitives (returns the new h before masking, and c)."""
    if MODULE[cell] == "rnn":
        a = x_t @ w["w_ih"].T + w["b_ih"] + h @ w["w_hh"].T + w["b_hh"]
        return (a.relu() if cell == "rnn_relu" else a.tanh()), None
    if cell == "gru":
        gx, gh = x_t @ w["w_ih"].T + w["b_ih"], h @ w["w_hh"].T + w["b_hh"]
        r = (gx[:, :H] + gh[:, :H]).sigmoid()
        z = (gx[:, H:2 * H] + gh[:, H:2 * H]).sigmoid()
        n = (gx[:, 2 * H:] + r * gh[:, 2 * H:]).tanh()
        return (1 - z) * n + z * h, None
    a = x_t @ w["w_ih"].T + w["b_ih"] + h @ w["w_hh"].T + w["b_hh"]
    p = w["w_peep"]
    i = (a[:, :H] + p[0] * c).sigmoid()
    f = (a[:, H:2 * H] + p[1] * c).sigmoid()
    c_new = f * c + i * a[:, 2 * H:3 * H].tanh()
    o = (a[:, 3 * H:] + p[2] * c_new).sigmoid()
    return o * c_new.tanh(), c_new


@pytest.mark.parametrize("lengths", [None, np.array([4, 1, 0, 3])])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm_peep", "gru"])
def test_hidden_grad_sink_is_the_total_gradient_of_h_t(cell, reverse, lengths, backend):
    """Add a zero tensor delta_t to each h_t in a step-by-step graph: d loss / d delta_t is,
    by definition, the total gradient reaching h_t; the sink must receive exactly that."""
    T, B, I, H = 4, 4, 3, 2
    a, g = make_args(cell, T, B, I, H, np.float64, seed=5)
    L = np.full(B, T) if lengths is None else lengths
    w = {k: Tensor(v) for k, v in a.items() if v is not None}
    h, c = w["h0"], w["c0"]
    deltas, outs = [None] * T, [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        m = Tensor((t < L).astype(np.float64)[:, None])
        deltas[t] = Tensor(np.zeros((B, H)), requires_grad=True)
        h_new, c_new = graph_step(cell, w["x"][t], h, c, w, H)
        outs[t] = m * (h_new + deltas[t])
        h = outs[t] + (1 - m) * h
        c = None if c_new is None else m * c_new + (1 - m) * c
    weights = [Tensor(g["grad_out"]), Tensor(g["grad_hn"])]
    loss = (mg.stack(outs) * weights[0]).sum() + (h * weights[1]).sum()
    loss.backward()

    received = []
    fn, names = fused_call(cell, lengths, reverse, sink=received.append)
    res = fn(*[Tensor(a[n], requires_grad=(n == "x")) for n in names])
    np.testing.assert_allclose(res[0].data, mg.stack(outs).data, atol=1e-12)
    ((res[0] * weights[0]).sum() + (res[1] * weights[1]).sum()).backward()
    assert len(received) == 1 and received[0].shape == (T, B, H)
    want = np.stack([d.grad for d in deltas])
    np.testing.assert_allclose(received[0], want, atol=1e-12)
    assert np.all(received[0][np.arange(T)[:, None] >= L[None, :]] == 0)


# ---------------------------------------------------------------- 5. semantics --------------
@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_forward_matches_torch(cell):
    torch = pytest.importorskip("torch")
    T, B, I, H = 5, 3, 4, 6
    a, _ = make_args(cell, T, B, I, H, np.float64, seed=7)
    kind = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[MODULE[cell]]
    kw = dict(nonlinearity=cell[4:]) if kind == "RNN" else {}
    layer = getattr(torch.nn, kind)(I, H, **kw).double()
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            getattr(layer, name.replace("w_", "weight_").replace("b_", "bias_") + "_l0").copy_(
                torch.from_numpy(a[name]))
        x, h0 = torch.from_numpy(a["x"]), torch.from_numpy(a["h0"])[None]
        hx = (h0, torch.from_numpy(a["c0"])[None]) if kind == "LSTM" else h0
        want = layer(x, hx)
    fn, names = fused_call(cell, None, False)
    got = fn(*[Tensor(a[n]) for n in names])
    np.testing.assert_allclose(got[0].data, want[0].numpy(), atol=1e-12)
    states = want[1] if kind == "LSTM" else (want[1],)
    for ours, theirs in zip(got[1:], states):
        np.testing.assert_allclose(ours.data, theirs[0].numpy(), atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm_peep", "gru"])
def test_lengths_mean_each_row_runs_its_own_prefix(cell, reverse, backend):
    """Row b with length L_b behaves as a sequence of L_b steps (reverse: that prefix read
    backwards); outputs past L_b are zero; h_n is its state after its last step."""
    T, B = 5, 4
    lengths = np.array([5, 2, 0, 3])
    a, _ = make_args(cell, T, B, 3, 4, np.float64, seed=8)
    fn, names = fused_call(cell, lengths, reverse)
    got = fn(*[Tensor(a[n]) for n in names])
    for b, n in enumerate(lengths):
        row = {k: (v if k.startswith(("w_", "b_")) or v is None else
                   v[:n, b:b + 1] if k == "x" else v[b:b + 1]) for k, v in a.items()}
        if reverse:
            row["x"] = np.ascontiguousarray(row["x"][::-1])
        fn_row, _ = fused_call(cell, None, False)
        want = fn_row(*[Tensor(row[k]) for k in names])
        out = want[0].data[::-1] if reverse else want[0].data
        np.testing.assert_allclose(got[0].data[:n, b], out[:, 0], atol=1e-12)
        assert np.all(got[0].data[n:, b] == 0)
        for ours, theirs in zip(got[1:], want[1:]):
            np.testing.assert_allclose(ours.data[b], theirs.data[0], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_saturated_gates_stay_finite_and_equal_the_twin(cell, dtype):
    """Pre-activations of +-1000: the compiled exp clamps its argument, no inf / nan."""
    a, g = make_args(cell, 4, 3, 2, 3, dtype, seed=9)
    a["x"] = (a["x"] * 2000).astype(dtype)
    got = run_kernels(compiled(cell), cell, a, g, None, False)
    want = run_kernels(_reference_rnn, cell, a, g, None, False)
    for k, (u, v) in enumerate(zip(got, want)):
        if v is not None:
            assert np.all(np.isfinite(u)), f"output {k}"
            np.testing.assert_allclose(u, v, rtol=TOL[dtype], atol=TOL[dtype] * 1000,
                                       err_msg=f"output {k}")


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_reused_buffers_never_overwrite_arrays_still_in_use(cell):
    """The compiled kernels recycle their big buffers only once nobody references them."""
    mod = compiled(cell)
    a1, g1 = make_args(cell, 5, 3, 2, 4, np.float32, seed=10)
    a2, g2 = make_args(cell, 5, 3, 2, 4, np.float32, seed=11)
    first = run_kernels(mod, cell, a1, g1, None, False)
    kept = [None if v is None else v.copy() for v in first]
    for _ in range(3):
        run_kernels(mod, cell, a2, g2, None, True)
    for k, (v, w) in enumerate(zip(first, kept)):
        if v is not None:
            np.testing.assert_array_equal(v, w, err_msg=f"output {k} was overwritten")


@pytest.mark.parametrize("cell", CELLS)
def test_packed_step_rows_do_not_depend_on_the_split(cell):
    """The packed step products (mg_gemm.h, AVX-512 or AVX2 tile) compute each row of a step
    the same way whatever other rows share the call: with token ids (so no input GEMM before
    the loop), the whole forward, and the state gradients the backward loop carries back
    (dh0, dc0), are bitwise the same for 1, 2 and 3 workers (19 rows: partial tiles, uneven
    shares), and again when the workers take the row blocks in another order (rnn_common's
    loop_blocks: first come, first served). BLAS gives no such promise, so the test needs the
    packed tiles."""
    if not compiled("rnn_tanh").packed_gemm_in_use():
        pytest.skip("no packed step products on this CPU (neither AVX-512 nor AVX2 with FMA)")
    a, g = make_args(cell, 6, 19, 1, 37, np.float32, 7)
    a["x"] = np.random.default_rng(7).integers(0, 11, (6, 19)).astype(np.int64)
    a["w_ih"] = np.random.default_rng(8).standard_normal((11, GATES[cell] * 37)).astype(
        np.float32)
    lengths = np.array([6, 0, 3] + [5] * 16, np.int64)
    runs = []
    before = mg.get_num_threads()
    try:
        for workers in (1, 2, 3, 2, 3):
            mg.set_num_threads(workers)
            runs.append(run_kernels(compiled(cell), cell, a, g, lengths, False))
    finally:
        mg.set_num_threads(before)
    # out, h_n, dh0, dh_seq (and c_n, dc0): what the time loops alone compute (dx is None)
    carried = [0, 1, 2, 4, 5, -1] if MODULE[cell] == "lstm" else [0, 1, 3, -1]
    for other in runs[1:]:
        for k in carried:
            assert other[k].shape == runs[0][k].shape
            np.testing.assert_array_equal(other[k], runs[0][k], err_msg=f"output {k}")
