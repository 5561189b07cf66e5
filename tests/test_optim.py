"""Optimizers, schedulers and gradient clipping: PyTorch's update rules, exactly."""
import math

import numpy as np
import pytest

from minigrad import optim
from minigrad.nn import utils
from minigrad.nn.module import Parameter

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 6


def _params_and_grads(seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def _run_minigrad(cls, kwargs, params, grads, skip_last=False):
    ps = [Parameter(p.copy(), dtype=np.float64) for p in params]
    opt = cls(ps, **kwargs)
    for step_grads in grads:
        for i, (p, g) in enumerate(zip(ps, step_grads)):
            p.grad = None if (skip_last and i == len(ps) - 1) else g.copy()
        opt.step()
    return [p.data for p in ps]


def _run_torch(torch, cls, kwargs, params, grads, skip_last=False):
    ps = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in params]
    opt = cls(ps, **kwargs)
    for step_grads in grads:
        for i, (p, g) in enumerate(zip(ps, step_grads)):
            p.grad = None if (skip_last and i == len(ps) - 1) else torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in ps]


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.7, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, eps=1e-4)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{sorted(k)}" for n, k in CASES])
def test_optimizer_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    params, grads = _params_and_grads()
    ours = _run_minigrad(getattr(optim, name), kwargs, params, grads, skip_last=True)
    theirs = _run_torch(torch, getattr(torch.optim, name), kwargs, params, grads,
                        skip_last=True)
    for a, b, p0 in zip(ours, theirs, params):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    # the parameter whose grad was always None did not move
    np.testing.assert_array_equal(ours[-1], params[-1])
    assert not np.allclose(ours[0], params[0])


@pytest.mark.parametrize("name,kwargs", CASES[1::2], ids=[n for n, _ in CASES[1::2]])
def test_state_dict_round_trip_resumes_bit_identically(name, kwargs):
    params, grads = _params_and_grads(1)
    straight = _run_minigrad(getattr(optim, name), kwargs, params, grads)

    cls = getattr(optim, name)
    ps = [Parameter(p.copy(), dtype=np.float64) for p in params]
    opt = cls(ps, **kwargs)
    for step_grads in grads[:3]:
        for p, g in zip(ps, step_grads):
            p.grad = g.copy()
        opt.step()
    saved = opt.state_dict()
    saved_weights = [p.data.copy() for p in ps]
    opt.step()  # a step after saving must not leak into the saved state (copies)
    ps2 = [Parameter(w, dtype=np.float64) for w in saved_weights]
    opt2 = cls(ps2, lr=123.0)  # hyperparameters come back from the state
    opt2.load_state_dict(saved)
    for step_grads in grads[3:]:
        for p, g in zip(ps2, step_grads):
            p.grad = g.copy()
        opt2.step()
    for a, b in zip(straight, ps2):
        np.testing.assert_array_equal(a, b.data)


def test_load_state_dict_rejects_wrong_shapes_and_groups():
    ps = [Parameter(np.zeros((2, 3)), dtype=np.float64)]
    opt = optim.Adam(ps)
    ps[0].grad = np.ones((2, 3))
    opt.step()
    state = opt.state_dict()
    other = optim.Adam([Parameter(np.zeros((3, 2)), dtype=np.float64)])
    with pytest.raises(ValueError, match=r"exp_avg.*\(2, 3\).*\(3, 2\)"):
        other.load_state_dict(state)
    two = optim.Adam([Parameter(np.zeros((2, 3))), Parameter(np.zeros(2))])
    with pytest.raises(ValueError, match="group 0 has 1 parameters"):
        two.load_state_dict(state)


def test_sgd_converges_on_a_quadratic():
    target = np.array([1.0, -2.0, 3.0])
    p = Parameter(np.zeros(3), dtype=np.float64)
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    for _ in range(200):
        p.grad = 2 * (p.data - target)
        opt.step()
    np.testing.assert_allclose(p.data, target, atol=1e-6)


def test_adam_first_step_is_lr_times_sign_of_grad():
    g = np.array([3.0, -0.5, 1e-3, -20.0])
    p = Parameter(np.ones(4), dtype=np.float64)
    opt = optim.Adam([p], lr=0.01)
    p.grad = g.copy()
    opt.step()
    np.testing.assert_allclose(p.data, 1 - 0.01 * np.sign(g), rtol=1e-6)


def test_zero_grad_and_float32_stays_float32():
    p = Parameter(np.ones(3), dtype=np.float32)
    opt = optim.RMSprop([p], lr=0.1, momentum=0.9, centered=True)
    p.grad = np.ones(3, dtype=np.float32)
    opt.step()
    assert p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad, 0)
    opt.zero_grad()
    assert p.grad is None


def test_param_groups_use_their_own_lr():
    a, b = Parameter(np.zeros(2), dtype=np.float64), Parameter(np.zeros(2), dtype=np.float64)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = np.ones(2), np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, -0.1)
    np.testing.assert_allclose(b.data, -1.0)


def test_invalid_hyperparameters_raise():
    p = [Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        optim.Adam(p, lr=-1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)


# ---- schedulers ----------------------------------------------------------------------------
SCHEDULERS = [("StepLR", dict(step_size=3, gamma=0.5)),
              ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),
              ("CosineAnnealingLR", dict(T_max=4))]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_schedulers_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours_opt = optim.SGD([Parameter(np.zeros(1))], lr=0.3)
    ours = getattr(optim, name)(ours_opt, **kwargs)
    theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **kwargs)
    a, b = [], []
    for _ in range(14):
        a.append(ours.get_last_lr()[0])
        b.append(theirs.get_last_lr()[0])
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert ours_opt.param_groups[0]["lr"] == ours.get_last_lr()[0]


def test_scheduler_state_dict_resumes():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=1.0)
    sched = optim.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        sched.step()
    state, opt_state = sched.state_dict(), opt.state_dict()
    expected = []
    for _ in range(3):
        sched.step()
        expected.append(sched.get_last_lr()[0])
    opt2 = optim.SGD([Parameter(np.zeros(1))], lr=1.0)
    sched2 = optim.CosineAnnealingLR(opt2, T_max=10)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(state)
    got = []
    for _ in range(3):
        sched2.step()
        got.append(sched2.get_last_lr()[0])
    assert got == expected
    assert "optimizer" not in state


def test_step_lr_closed_form():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        sched.step()
    np.testing.assert_allclose(lrs, [1, 1, 0.1, 0.1, 0.01, 0.01])


# ---- gradient clipping ---------------------------------------------------------------------
@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2), (0.5, 1), (100.0, 2), (0.3, math.inf),
                                                (2.0, 3.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) for s in SHAPES]
    ps = [Parameter(np.zeros(s), dtype=np.float64) for s in SHAPES]
    for p, g in zip(ps, grads):
        p.grad = g.copy()
    tps = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, g in zip(tps, grads):
        p.grad = torch.tensor(g)
    total = utils.clip_grad_norm_(ps, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(float(ttotal), rel=1e-12)
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_clip_grad_norm_scales_to_max_norm_and_skips_none():
    a, b = Parameter(np.zeros(2), dtype=np.float64), Parameter(np.zeros(2), dtype=np.float64)
    a.grad = np.array([3.0, 4.0])
    total = utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert total == pytest.approx(5.0)
    assert np.linalg.norm(a.grad) == pytest.approx(1.0, rel=1e-5)
    assert b.grad is None
    assert optim.clip_grad_norm_([a], 10.0) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_of_mixed_dtypes_and_layouts_is_the_norm_of_all_elements():
    """float32 and float64 gradients (one kernel call per dtype) and a non-contiguous one
    (numpy): the total is the float64 2-norm of every element, each gradient is scaled by
    max_norm / total."""
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal(7),
             rng.standard_normal((6, 4))[:, 1], rng.standard_normal(300).astype(np.float32)]
    ps = []
    for g in grads:
        p = Parameter(np.zeros(g.shape), dtype=g.dtype)
        # a copy; the strided one stays strided (column 0 of a new (n, 2) array)
        p.grad = g.copy() if g.flags.c_contiguous else np.repeat(g[:, None], 2, axis=1)[:, 0]
        assert p.grad.flags.c_contiguous == g.flags.c_contiguous
        ps.append(p)
    want = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    total = utils.clip_grad_norm_(ps, 0.5)
    assert total == pytest.approx(want, rel=1e-12)
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(p.grad, g * (0.5 / (want + 1e-6)), rtol=1e-6)


def test_clip_grad_value():
    a = Parameter(np.zeros(3), dtype=np.float64)
    a.grad = np.array([-5.0, 0.2, 9.0])
    utils.clip_grad_value_([a], 1.0)
    np.testing.assert_array_equal(a.grad, [-1.0, 0.2, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_fused_kernel_and_plain_numpy_give_the_same_parameters(dtype, monkeypatch):
    # the fused pass (compiled when built) against the numpy path that amsgrad / odd grads take
    ext = pytest.importorskip("minigrad._ext.elementwise")
    from minigrad.fast import kernels
    rng = np.random.default_rng(0)
    start = rng.standard_normal((5, 4)).astype(dtype)
    grads = [rng.standard_normal((5, 4)).astype(dtype) for _ in range(6)]
    monkeypatch.setattr(kernels, "adam_update_many", ext.adam_update_many, raising=False)
    results = []
    for layout in ("fused", "plain"):
        p = Parameter(start.copy(), dtype=dtype)
        opt = optim.Adam([p], lr=0.01, weight_decay=0.01)
        for g in grads:
            # a Fortran-ordered gradient takes the plain numpy path
            p.grad = g.copy() if layout == "fused" else np.asfortranarray(g)
            opt.step()
        results.append(p.data)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=1e-2)), ("Adam", dict(amsgrad=True)),
                                         ("SGD", dict(lr=0.1, momentum=0.9)),
                                         ("RMSprop", dict(lr=1e-2)), ("Adagrad", dict(lr=0.1))])
def test_state_follows_the_parameters_into_a_new_dtype(name, kwargs):
    """After Module.to(float64) between steps, the optimizer's arrays become float64, and the
    next step is the one a float64 optimizer holding the same state (converted) takes."""
    from minigrad import Tensor, nn
    rng = np.random.default_rng(0)
    model = nn.Linear(3, 2, rng=rng)
    opt = getattr(optim, name)(list(model.parameters()), **kwargs)
    x = rng.standard_normal((4, 3))

    def step(m, o, dtype):
        o.zero_grad()
        (m(Tensor(x.astype(dtype))) ** 2).sum().backward()
        o.step()

    for _ in range(2):
        step(model, opt, np.float32)
    model.double()
    ref = nn.Linear(3, 2, dtype=np.float64)
    for p, q in zip(model.parameters(), ref.parameters()):
        q.data = p.data.copy()
    ref_opt = getattr(optim, name)(list(ref.parameters()), **kwargs)
    saved = opt.state_dict()
    for entry in saved["state"].values():
        for k, v in entry.items():
            if isinstance(v, np.ndarray):
                entry[k] = v.astype(np.float64)
    ref_opt.load_state_dict(saved)
    step(model, opt, np.float64)
    step(ref, ref_opt, np.float64)
    for p, q in zip(model.parameters(), ref.parameters()):
        assert p.data.dtype == np.float64
        np.testing.assert_array_equal(p.data, q.data)
        assert all(v.dtype == np.float64 for v in opt.state[p].values()
                   if isinstance(v, np.ndarray))


# ---- a hand-set gradient that cannot update its parameter is refused ------------------------
OPTIMIZERS = [(optim.SGD, dict(lr=0.1)), (optim.SGD, dict(lr=0.1, momentum=0.9)),
              (optim.Adam, dict(lr=0.1)), (optim.Adam, dict(lr=0.1, amsgrad=True)),
              (optim.AdamW, dict(lr=0.1)), (optim.Adagrad, dict(lr=0.1)),
              (optim.RMSprop, dict(lr=0.1)), (optim.RMSprop, dict(lr=0.1, momentum=0.5))]


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_grad_of_another_shape_is_refused_naming_the_parameter_and_both_shapes(cls, kwargs,
                                                                                 dtype):
    good = Parameter(np.ones((4,)), dtype=dtype)
    bad = Parameter(np.ones((2, 3)), dtype=dtype)
    good.grad = np.ones(4, dtype=dtype)
    bad.grad = np.ones(3, dtype=dtype)            # broadcasts against (2, 3): must not pass
    opt = cls([good, bad], **kwargs)
    before = bad.data.copy()
    with pytest.raises(ValueError, match=r"parameter 1 of group 0 has shape \(3,\).*\(2, 3\)"):
        opt.step()
    np.testing.assert_array_equal(bad.data, before)
    bad.name = "decoder.weight"
    with pytest.raises(ValueError, match=r"'decoder.weight'.*\(3,\).*\(2, 3\)"):
        opt.step()


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS)
def test_a_grad_that_is_not_a_float_array_is_refused(cls, kwargs):
    p = Parameter(np.ones((2, 2)))
    opt = cls([p], **kwargs)
    p.grad = np.ones((2, 2), dtype=np.int64)
    with pytest.raises(TypeError, match=r"\.step: .*parameter 0 of group 0.*dtype int64"):
        opt.step()
    p.grad = [[1.0, 1.0], [1.0, 1.0]]
    with pytest.raises(TypeError, match=r"\.step: .*is a list"):
        opt.step()


@pytest.mark.parametrize("clip", [lambda ps: utils.clip_grad_norm_(ps, 1.0),
                                  lambda ps: utils.clip_grad_norm_(ps, 1.0, norm_type=1),
                                  lambda ps: utils.clip_grad_value_(ps, 0.5)])
def test_clipping_refuses_a_grad_of_another_shape(clip):
    p, q = Parameter(np.ones((2, 3))), Parameter(np.ones(5))
    p.grad, q.grad = np.ones(3, dtype=np.float32), np.ones(5, dtype=np.float32)
    with pytest.raises(ValueError, match=r"clip_grad_\w+_: the .grad of parameter 0 has shape "
                                         r"\(3,\), the parameter has shape \(2, 3\)"):
        clip([p, q])
