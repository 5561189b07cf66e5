"""nn.init: bounds and spreads follow PyTorch's fan and gain formulas (checked statistically on
large draws, not by comparing random numbers with torch), orthogonal_ gives orthonormal rows or
columns, and every initialiser is repeatable through minigrad.manual_seed or rng=."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import init


def param(*shape, dtype=np.float64):
    return nn.Parameter(np.zeros(shape), dtype=dtype)


def test_fans_follow_torch_layout():
    # (out, in, *kernel): fan_in = in * prod(kernel), fan_out = out * prod(kernel)
    assert init._fans(param(6, 4)) == (4, 6)
    assert init._fans(param(6, 4, 3, 2)) == (24, 36)
    with pytest.raises(ValueError, match="at least 2"):
        init._fans(param(5))


def test_fans_and_gains_equal_torch():
    torch = pytest.importorskip("torch")
    for shape in [(6, 4), (8, 3, 5), (2, 3, 4, 5)]:
        assert init._fans(param(*shape)) == torch.nn.init._calculate_fan_in_and_fan_out(
            torch.empty(shape))
    for name, arg in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                      ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert init.calculate_gain(name, arg) == pytest.approx(
            torch.nn.init.calculate_gain(name, arg))


def test_uniform_and_normal_moments():
    p = param(400, 500)
    init.uniform_(p, -0.3, 0.7)
    assert p.data.min() >= -0.3 and p.data.max() <= 0.7
    assert p.data.mean() == pytest.approx(0.2, abs=0.005)
    init.normal_(p, 1.5, 0.25)
    assert p.data.mean() == pytest.approx(1.5, abs=0.005)
    assert p.data.std() == pytest.approx(0.25, rel=0.01)


def test_constant_fills():
    p = param(3, 4)
    assert (init.ones_(p).data == 1).all()
    assert (init.zeros_(p).data == 0).all()
    assert (init.constant_(p, -2.5).data == -2.5).all()


@pytest.mark.parametrize("shape, gain", [((300, 200), 1.0), ((256, 64), 5 / 3),
                                          ((50, 40, 3), 2.0)])
def test_xavier_uniform_bound_and_std(shape, gain):
    p = param(*shape)
    init.xavier_uniform_(p, gain=gain)
    fan_in, fan_out = init._fans(p)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(p.data).max() <= bound
    assert np.abs(p.data).max() > 0.99 * bound  # the range is really used
    assert p.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_xavier_normal_std():
    p = param(300, 200)
    init.xavier_normal_(p, gain=2.0)
    assert p.data.std() == pytest.approx(2.0 * math.sqrt(2.0 / 500), rel=0.02)
    assert abs(p.data.mean()) < 0.01


@pytest.mark.parametrize("mode, nonlinearity, a", [("fan_in", "leaky_relu", 0.0),
                                                    ("fan_out", "relu", 0.0),
                                                    ("fan_in", "leaky_relu", math.sqrt(5))])
def test_kaiming_uniform_bound(mode, nonlinearity, a):
    p = param(200, 300)
    init.kaiming_uniform_(p, a=a, mode=mode, nonlinearity=nonlinearity)
    fan = 300 if mode == "fan_in" else 200
    bound = init.calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.99 * bound
    assert p.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(p, mode="fan_avg")


def test_kaiming_uniform_sqrt5_is_torch_linear_default_bound():
    # PyTorch's Linear uses kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(fan_in)
    p = param(64, 100)
    init.kaiming_uniform_(p, a=math.sqrt(5))
    assert np.abs(p.data).max() <= 0.1 and np.abs(p.data).max() > 0.099


@pytest.mark.parametrize("shape", [(4 * 16, 16), (3 * 8, 8), (16, 16), (5, 12), (6, 2, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    p = param(*shape)
    init.orthogonal_(p, gain=1.0)
    m = p.data.reshape(shape[0], -1)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-12)


def test_orthogonal_recurrent_weight_is_one_matrix_with_gain():
    # an LSTM weight_hh (4H, H): the whole (4H, H) matrix has orthonormal columns (times gain),
    # so the gate blocks are not each orthogonal on their own
    lstm = nn.LSTM(3, 8, dtype=np.float64)
    w = lstm.weight_hh_l0
    init.orthogonal_(w, gain=0.5)
    np.testing.assert_allclose(w.data.T @ w.data, 0.25 * np.eye(8), atol=1e-12)
    block = w.data[:8]
    assert not np.allclose(block.T @ block, 0.25 * np.eye(8), atol=1e-3)


def test_orthogonal_keeps_float32_and_rejects_vectors():
    p = param(6, 6, dtype=np.float32)
    init.orthogonal_(p)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.data @ p.data.T, np.eye(6), atol=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        init.orthogonal_(param(5))


@pytest.mark.parametrize("fn", [
    lambda p, rng=None: init.uniform_(p, rng=rng),
    lambda p, rng=None: init.normal_(p, rng=rng),
    lambda p, rng=None: init.xavier_uniform_(p, rng=rng),
    lambda p, rng=None: init.xavier_normal_(p, rng=rng),
    lambda p, rng=None: init.kaiming_uniform_(p, rng=rng),
    lambda p, rng=None: init.orthogonal_(p, rng=rng),
])
def test_seeding_makes_draws_repeatable(fn):
    a, b, c = param(5, 7), param(5, 7), param(5, 7)
    mg.manual_seed(11)
    fn(a)
    mg.manual_seed(11)
    fn(b)
    np.testing.assert_array_equal(a.data, b.data)
    fn(c)  # the generator moved on: a new draw
    assert not np.array_equal(b.data, c.data)
    d, e = param(5, 7), param(5, 7)
    fn(d, rng=np.random.default_rng(3))
    fn(e, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(d.data, e.data)


def test_generator_keyword_and_int_seeds():
    """torch's keyword generator= is an alias of rng=; an int seeds a fresh generator."""
    a, b, c = param(4, 6), param(4, 6), param(4, 6)
    init.xavier_uniform_(a, generator=np.random.default_rng(5))
    init.xavier_uniform_(b, rng=5)
    init.xavier_uniform_(c, generator=5)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(b.data, c.data)
    with pytest.raises(TypeError, match="same argument"):
        init.normal_(a, rng=1, generator=1)
