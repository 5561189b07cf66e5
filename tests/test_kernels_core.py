"""Compiled kernels (minigrad._ext.elementwise / embedding / loss / linear) equal their numpy
twins in minigrad.fast._reference on random float32 and float64 inputs, and reject non-contiguous,
wrong-dtype, wrong-shape and out-of-range inputs with a ValueError naming the kernel."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.fast import _reference as ref
from minigrad.fast import kernels

ext_elementwise = pytest.importorskip("minigrad._ext.elementwise")
ext_embedding = pytest.importorskip("minigrad._ext.embedding")
ext_loss = pytest.importorskip("minigrad._ext.loss")
ext_linear = pytest.importorskip("minigrad._ext.linear")

DTYPES = [np.float32, np.float64]


def loss_build(build: str):
    """minigrad._ext.loss or its AVX-512 build (skipped where the CPU cannot run that)."""
    if build and kernels.variant() != "avx512":
        pytest.skip("the AVX-512 build is not in use (CPU without it, or MINIGRAD_AVX512=0)")
    return pytest.importorskip(f"minigrad._ext.loss{build}")
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def assert_same(a, b, dtype):
    assert a.dtype == b.dtype == dtype and a.shape == b.shape
    np.testing.assert_allclose(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["tanh_backward", "sigmoid_backward"])
@given(seed=st.integers(0, 2**32 - 1),
       shape=st.sampled_from([(), (7,), (3, 5), (2, 3, 4), (37,), (32, 64)]))
def test_elementwise_backward_matches_twin(dtype, name, seed, shape):
    rng = np.random.default_rng(seed)
    y = rng.uniform(-1, 1, shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    assert_same(getattr(ext_elementwise, name)(y, g), getattr(ref, name)(y, g), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(), (7,), (3, 5), (2, 3, 40)]),
       scale=st.sampled_from([1.0, 30.0]))
def test_sigmoid_matches_twin(dtype, seed, shape, scale):
    x = np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype)
    got = ext_elementwise.sigmoid(x)
    want = ref.sigmoid(x)
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=TOL[dtype]["rtol"], atol=1e-37)
    assert np.all((got >= 0) & (got <= 1))


def test_sigmoid_kernel_reads_views_and_extremes():
    x = np.array([[-1e4, -100, -1, 0], [1, 100, 1e4, np.inf]], np.float32)
    for arr in (x, x[:, ::2], x.T):
        np.testing.assert_allclose(ext_elementwise.sigmoid(arr), ref.sigmoid(arr), rtol=2e-6,
                                   atol=1e-37)
    assert ext_elementwise.sigmoid(x[:, ::2]).flags.c_contiguous
    assert ext_elementwise.sigmoid(x)[1, 3] == 1 and ext_elementwise.sigmoid(x)[0, 0] == 0
    assert np.isnan(ext_elementwise.sigmoid(np.array([np.nan], np.float32))[0])


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), dim=st.integers(1, 6),
       num=st.integers(1, 5))
def test_embedding_backward_matches_twin(dtype, seed, n, dim, num):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num, n)                    # few rows: many repeats
    grad = rng.standard_normal((n, dim)).astype(dtype)
    got = ext_embedding.embedding_backward(idx, grad, num)
    assert_same(got, ref.embedding_backward(idx, grad, num), dtype)
    # independent check of the scatter-add: row k is the sum of the grads that picked k
    for k in range(num):
        np.testing.assert_allclose(got[k], grad[idx == k].sum(axis=0), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("build", ["", "_avx512"])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), c=st.integers(1, 70),
       scale=st.sampled_from([1.0, 30.0, 1000.0]))
def test_softmax_xent_matches_twin(build, dtype, seed, n, c, scale):
    """Both builds (the AVX-512 one where the CPU runs it), rows split across workers."""
    ext_loss = loss_build(build)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * scale).astype(dtype)
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.3] = -100
    loss_c, probs_c = ext_loss.softmax_xent_forward(x, t, -100)
    loss_r, probs_r = ref.softmax_xent_forward(x, t, -100)
    assert_same(probs_c, probs_r, dtype)
    np.testing.assert_allclose(loss_c, loss_r, rtol=TOL[dtype]["rtol"],
                               atol=TOL[dtype]["atol"] * max(scale, 1.0))
    assert np.all(np.isfinite(loss_c)) and np.all(loss_c[t == -100] == 0)
    g = rng.standard_normal(n).astype(dtype)
    dx_c = ext_loss.softmax_xent_backward(probs_c, t, -100, g)
    assert_same(dx_c, ref.softmax_xent_backward(probs_r, t, -100, g), dtype)
    # written into out, and in place over probs (each element read before it is written)
    for kernel, probs in ((ext_loss, probs_c), (ref, probs_r)):
        out = np.full_like(probs, np.nan)
        assert kernel.softmax_xent_backward(probs, t, -100, g, out) is out
        assert_same(out, dx_c, dtype)
        scratch = probs.copy()
        assert kernel.softmax_xent_backward(scratch, t, -100, g, scratch) is scratch
        assert_same(scratch, dx_c, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(0,), (7,), (3, 5), (2, 3, 4)]),
       step=st.integers(1, 50))
def test_adam_update_matches_twin(dtype, seed, shape, step):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    m = (rng.standard_normal(shape) * 0.1).astype(dtype)
    v = (rng.random(shape) * 0.01).astype(dtype)
    args = (0.9, 0.999, 1e-8, 1e-3 / (1 - 0.9 ** step), np.sqrt(1 - 0.999 ** step))
    compiled, twin = [a.copy() for a in (p, m, v)], [a.copy() for a in (p, m, v)]
    assert ext_elementwise.adam_update(compiled[0], g, *compiled[1:], *args) is None
    ref.adam_update(twin[0], g, *twin[1:], *args)
    for got, want in zip(compiled, twin):
        assert_same(got, want, dtype)


ADAM = (0.9, 0.999, 1e-8, 1e-3, 0.1)  # beta1, beta2, eps, step_size, bc2_sqrt


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1),
       shapes=st.lists(st.sampled_from([(0,), (1,), (7,), (3, 5), (2, 3, 4), (40,)]),
                       min_size=0, max_size=6))
def test_adam_update_many_matches_the_twin_bit_for_bit(workers, dtype, seed, shapes):
    """Parameters of different sizes (empty ones too) and steps in one call, their elements
    split across 1-3 workers at any point (ELEMENTS_PER_WORKER lowered so that they do), give
    exactly what one adam_update per parameter gives."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ms = [(rng.standard_normal(s) * 0.1).astype(dtype) for s in shapes]
    vs = [(rng.random(s) * 0.01).astype(dtype) for s in shapes]
    steps = rng.integers(1, 50, len(shapes))
    step_sizes, bc2_sqrts = 1e-3 / (1 - 0.9 ** steps), np.sqrt(1 - 0.999 ** steps)
    many = [[a.copy() for a in arrays] for arrays in (params, ms, vs)]
    one = [[a.copy() for a in arrays] for arrays in (params, ms, vs)]
    before, per_worker = mg.get_num_threads(), mg.fast.threads.ELEMENTS_PER_WORKER
    mg.set_num_threads(workers)
    mg.fast.threads.ELEMENTS_PER_WORKER = 1
    try:
        assert ext_elementwise.adam_update_many(many[0], grads, many[1], many[2], 0.9, 0.999,
                                                1e-8, step_sizes, bc2_sqrts) is None
    finally:
        mg.set_num_threads(before)
        mg.fast.threads.ELEMENTS_PER_WORKER = per_worker
    for k in range(len(shapes)):
        # Python floats, as the optimizer passes (a numpy float64 would make numpy compute
        # the float32 twin's steps in float64)
        ref.adam_update(one[0][k], grads[k], one[1][k], one[2][k], 0.9, 0.999, 1e-8,
                        float(step_sizes[k]), float(bc2_sqrts[k]))
    for got, want in zip(many, one):
        for u, v in zip(got, want):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("impl", ["compiled", "reference"])
def test_adam_update_many_rejects_bad_lists_naming_the_parameter(impl):
    fn = (ext_elementwise if impl == "compiled" else ref).adam_update_many
    a, b = np.zeros(3, np.float32), np.zeros(3, np.float64)
    with pytest.raises(ValueError, match="adam_update_many: the lists must have one length"):
        fn([a], [a], [a], [], 0.9, 0.999, 1e-8, [1.0], [1.0])
    with pytest.raises(ValueError, match="adam_update_many: parameter 1 is float64, parameter 0 "
                                         "is float32"):
        fn([a, b], [a, b], [a, b], [a, b], 0.9, 0.999, 1e-8, [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="adam_update_many: parameter 1: adam_update: all arrays "
                                         "must have one shape"):
        fn([a, a], [a, a[:2].copy()], [a, a], [a, a], 0.9, 0.999, 1e-8, [1.0, 1.0], [1.0, 1.0])


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1),
       shapes=st.lists(st.sampled_from([(0,), (1,), (7,), (3, 5), (2, 3, 4), (40,), (9, 8)]),
                       min_size=0, max_size=6))
def test_sum_of_squares_many_matches_the_twin(workers, dtype, seed, shapes):
    """Arrays of different sizes (empty ones too), their elements split across 1-3 workers at
    any point (ELEMENTS_PER_WORKER lowered so that they do): the float64 sum of all squares
    the twin computes, to the rounding of the order of the additions."""
    rng = np.random.default_rng(seed)
    arrays = [(rng.standard_normal(s) * 10).astype(dtype) for s in shapes]
    before, per_worker = mg.get_num_threads(), mg.fast.threads.ELEMENTS_PER_WORKER
    mg.set_num_threads(workers)
    mg.fast.threads.ELEMENTS_PER_WORKER = 1
    try:
        got = ext_elementwise.sum_of_squares_many(arrays)
    finally:
        mg.set_num_threads(before)
        mg.fast.threads.ELEMENTS_PER_WORKER = per_worker
    want = ref.sum_of_squares_many(arrays)
    exact = sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-13, abs=1e-300)
    assert got == pytest.approx(exact, rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("impl", ["compiled", "reference"])
def test_sum_of_squares_many_rejects_bad_arrays_naming_the_kernel(impl):
    fn = (ext_elementwise if impl == "compiled" else ref).sum_of_squares_many
    a, b = np.ones(4, np.float32), np.ones(4, np.float64)
    assert fn([]) == 0.0
    for bad in ([a, b], [a, np.ones((4, 4), np.float32)[:, 0]], [a, np.ones(4, np.int64)],
                [a, [1.0]]):
        with pytest.raises(ValueError, match="sum_of_squares_many: array 1 must be"):
            fn(bad)
    with pytest.raises(ValueError, match="sum_of_squares_many: expected a list"):
        fn(a)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(0, 70), n_in=st.integers(0, 9),
       n_out=st.integers(1, 9), bias=st.booleans(),
       needs=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_linear_matches_twin(workers, dtype, seed, rows, n_in, n_out, bias, needs):
    """Every split of rows and output features across workers (uneven ones too) gives the
    twin's numbers; the twin is the plain numpy formula."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype) if bias else None
    g = rng.standard_normal((rows, n_out)).astype(dtype)
    before = mg.get_num_threads()
    mg.set_num_threads(workers)
    try:
        y = ext_linear.linear_forward(x, w, b)
        grads = ext_linear.linear_backward(g, x, w, needs)
    finally:
        mg.set_num_threads(before)
    assert_same(y, ref.linear_forward(x, w, b), dtype)
    for got, want in zip(grads, ref.linear_backward(g, x, w, needs)):
        if want is None:
            assert got is None
        else:
            assert_same(got, want, dtype)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("rows, n_in, n_out", [(70, 64, 65), (37, 32, 40), (19, 64, 32),
                                               (300, 32, 96), (5, 33, 70)])
def test_linear_on_the_avx512_tile_matches_twin(workers, rows, n_in, n_out):
    """float32 sizes that put the products on the AVX-512 tile where the CPU has it (W^T packed
    for y, whole 32-wide panels; W and the inputs read in place for dX and dW), with the edges
    left to BLAS: outputs past the last whole panel, dW rows past the last block of 8, an input
    size that is no multiple of 32. Elsewhere the same sizes run on BLAS."""
    rng = np.random.default_rng(rows + n_in + n_out)
    x = rng.standard_normal((rows, n_in)).astype(np.float32)
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    g = rng.standard_normal((rows, n_out)).astype(np.float32)
    before = mg.get_num_threads()
    mg.set_num_threads(workers)
    try:
        y = ext_linear.linear_forward(x, w, b)
        grads = ext_linear.linear_backward(g, x, w, (True, True, True))
    finally:
        mg.set_num_threads(before)
    np.testing.assert_allclose(y, ref.linear_forward(x, w, b), rtol=1e-5, atol=1e-4)
    for got, want in zip(grads, ref.linear_backward(g, x, w, (True, True, True))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def _bad_inputs(dtype):
    """(kernel name, args) pairs each with exactly one defect."""
    y = np.ones((4, 6), dtype=dtype)
    x = np.zeros((4, 3), dtype=dtype)
    t = np.array([0, 1, 2, -100])
    idx = np.array([0, 1, 1, 2])
    wrong = np.float64 if dtype == np.float32 else np.float32
    return [
        ("tanh_backward", (y[:, ::2], y[:, ::2].copy())),                 # non-contiguous
        ("tanh_backward", (y, y.astype(wrong))),                          # mixed dtypes
        ("sigmoid_backward", (y.astype(np.int64), y.astype(np.int64))),   # integer
        ("sigmoid_backward", (y, y[:3])),                                 # shapes differ
        ("sigmoid", (y.astype(np.int64),)),                               # integer
        ("sigmoid", (y.astype(y.dtype.newbyteorder()),)),                 # byte-swapped
        ("tanh_backward", (y.astype(y.dtype.newbyteorder()),) * 2),       # byte-swapped
        ("embedding_backward", (idx, y[:, ::2], 3)),                      # non-contiguous
        ("embedding_backward", (idx.astype(np.int32), y, 3)),             # int32 indices
        ("embedding_backward", (idx, y.astype(np.int64), 3)),             # integer grad
        ("embedding_backward", (idx[:3], y, 3)),                          # N mismatch
        ("embedding_backward", (idx, y, 2)),                              # index 2 >= 2
        ("embedding_backward", (idx - 1, y, 3)),                          # index -1
        ("adam_update", (y, y, y, y[:, ::2].copy()) + ADAM),             # shapes differ
        ("adam_update", (y, y.astype(wrong), y, y) + ADAM),               # mixed dtypes
        ("adam_update", (y, y, np.asfortranarray(y), y) + ADAM),          # non-contiguous
        ("adam_update", (y.astype(np.int64),) * 4 + ADAM),                # integer
        ("softmax_xent_forward", (np.asfortranarray(y), t, -100)),        # non-contiguous
        ("softmax_xent_forward", (x, t.astype(np.int32), -100)),          # int32 target
        ("softmax_xent_forward", (x, t.astype(dtype), -100)),             # float target
        ("softmax_xent_forward", (x, t[:3], -100)),                       # shape mismatch
        ("softmax_xent_forward", (x, np.array([0, 1, 3, 0]), -100)),      # 3 >= 3 classes
        ("softmax_xent_forward", (x, t, 0)),                              # -100 not ignored
        ("softmax_xent_forward", (x[0], t[:1], -100)),                    # 1-D logits
        ("softmax_xent_backward", (x, t, -100, np.ones(4, dtype=wrong))),
        ("softmax_xent_backward", (x, t, -100, np.ones(3, dtype=dtype))),
        ("softmax_xent_backward", (x[:, ::-1], t, -100, np.ones(4, dtype=dtype))),
        ("softmax_xent_backward", (x, t, -100, np.ones(4, dtype=dtype), x[:3])),   # out shape
        ("softmax_xent_backward", (x, t, -100, np.ones(4, dtype=dtype), x.astype(wrong))),
        ("softmax_xent_backward", (x, t, -100, np.ones(4, dtype=dtype),
                                   np.asfortranarray(np.zeros((4, 3), dtype)))),  # out layout
        ("linear_forward", (x, y, None)),                                 # w (4, 6) vs I = 3
        ("linear_forward", (x, x[:2].astype(wrong), None)),               # mixed dtypes
        ("linear_forward", (x, x[:2], np.ones(3, dtype))),                # bias of 3, not 2
        ("linear_forward", (np.asfortranarray(x), x[:2], None)),          # non-contiguous
        ("linear_forward", (x.astype(np.int64), x[:2].astype(np.int64), None)),  # integer
        ("linear_backward", (np.ones((4, 3), dtype), x, x[:2], (1, 1, 1))),  # g (4, 3) vs O = 2
        ("linear_backward", (np.ones((4, 2), wrong), x, x[:2], (1, 1, 1))),  # mixed dtypes
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["compiled", "reference"])
def test_bad_inputs_are_rejected_with_the_kernel_name(dtype, impl):
    modules = {"tanh_backward": ext_elementwise, "sigmoid_backward": ext_elementwise,
               "sigmoid": ext_elementwise,
               "adam_update": ext_elementwise,
               "embedding_backward": ext_embedding, "softmax_xent_forward": ext_loss,
               "softmax_xent_backward": ext_loss, "linear_forward": ext_linear,
               "linear_backward": ext_linear}
    for name, args in _bad_inputs(dtype):
        fn = getattr(modules[name] if impl == "compiled" else ref, name)
        with pytest.raises(ValueError, match=name):
            fn(*args)


def test_out_of_range_messages_name_the_value_and_position():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"target 7 in row 1 is out of range for 4 classes"):
        ext_loss.softmax_xent_forward(x, np.array([0, 7, 1]), -100)
    with pytest.raises(ValueError, match=r"index 5 at position 2 is out of range"):
        ext_embedding.embedding_backward(np.array([0, 1, 5]), np.ones((3, 2)), 5)


def test_registry_switches_between_compiled_and_twins():
    before = kernels.backend()
    try:
        kernels.use("numpy")
        assert kernels.active().loss is ref and kernels.active().embedding is ref
        x = mg.Tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)
        t = np.array([0, 2, 1, 1, -100])
        F.cross_entropy(x, t).backward()
        g_numpy = x.grad
        kernels.use("compiled")
        assert kernels.active().loss.__name__ in ("minigrad._ext.loss",
                                                  "minigrad._ext.loss_avx512")
        assert kernels.active().elementwise is ext_elementwise
        x.grad = None
        F.cross_entropy(x, t).backward()
        np.testing.assert_allclose(x.grad, g_numpy, rtol=1e-12)
    finally:
        kernels.use(before)


def _steps(text: str) -> set[str]:
    import re
    return {" ".join(m.split()) for m in re.findall(r"\(\d+\) [^\n(]+", text)}


@pytest.mark.parametrize("sources, names", [
    (["elementwise.pyx", "mg_elementwise.h"], ["tanh_backward", "sigmoid_backward",
                                               "adam_update"]),
    (["embedding.pyx"], ["embedding_backward"]),
    (["loss.pyx"], ["softmax_xent_forward", "softmax_xent_backward"]),
    (["linear.pyx"], ["linear_forward", "linear_backward"]),
])
def test_numbered_derivation_steps_are_identical_in_twin_and_pyx(sources, names):
    import inspect
    import pathlib
    folder = pathlib.Path(__file__).resolve().parents[1] / "src_ext"
    if not folder.exists():
        pytest.skip("source tree not available")
    twin_steps = set().union(*(_steps(inspect.getdoc(getattr(ref, n))) for n in names))
    source_steps = set().union(*(_steps((folder / f).read_text()) for f in sources))
    assert twin_steps and twin_steps <= source_steps
