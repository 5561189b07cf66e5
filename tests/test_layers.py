"""Linear, Embedding, Dropout, Sequential and the Module features they rely on."""
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import Tensor
from minigrad.gradcheck import numerical_jacobian_vector
from minigrad.nn.layers import Dropout, Embedding, Linear, ReLU, Sequential, Tanh
from minigrad.nn.module import StateDictError


def _check_grads(fn, tensors, seed=0):
    """The module's own backward vs central differences, perturbing its parameters in place."""
    rng = np.random.default_rng(seed)
    for t in tensors:
        t.grad = None
    out = fn()
    weight = rng.standard_normal(out.shape)
    (out * Tensor(weight)).sum().backward()
    numeric = numerical_jacobian_vector(lambda *_: fn(), tensors, [weight], eps=1e-6)
    for t, num in zip(tensors, numeric):
        np.testing.assert_allclose(t.grad, num, rtol=1e-5, atol=1e-7)


# ---- Linear --------------------------------------------------------------------------------
@given(n=st.integers(1, 4), fan_in=st.integers(1, 5), fan_out=st.integers(1, 4),
       bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_linear_gradients_match_central_differences(n, fan_in, fan_out, bias, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(fan_in, fan_out, bias=bias, dtype=np.float64, rng=rng)
    x = Tensor(rng.standard_normal((2, n, fan_in)), requires_grad=True)
    _check_grads(lambda: layer(x).tanh(), [x, *layer.parameters()], seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0, 3), (4, 3), (5, 2, 3)])
def test_linear_bias_gradient_is_the_sum_over_all_leading_rows(dtype, shape):
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, dtype=dtype, rng=rng)
    x = Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    g = rng.standard_normal(shape[:-1] + (2,)).astype(dtype)
    layer(x).backward(g)
    want = g.reshape(-1, 2).sum(axis=0, dtype=np.float64)
    assert layer.bias.grad.dtype == dtype and layer.bias.grad.shape == (2,)
    np.testing.assert_allclose(layer.bias.grad, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


class _WrongDouble(mg.Function):
    """y = 2x with a deliberately wrong backward (forgets the factor 2)."""

    @staticmethod
    def forward(ctx, a):
        return 2 * a

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_gradient_check_catches_a_wrong_backward():
    layer = Linear(3, 2, dtype=np.float64, rng=np.random.default_rng(0))
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    with pytest.raises(AssertionError):
        _check_grads(lambda: _WrongDouble.apply(layer(x)), [x, *layer.parameters()])


def test_linear_names_shapes_init_and_errors():
    layer = Linear(9, 4)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (4, 9) and layer.bias.shape == (4,)
    assert layer.weight.dtype == np.float32
    big = Linear(16, 2000, rng=np.random.default_rng(0))
    bound = 1 / 4
    assert np.abs(big.weight.data).max() <= bound
    assert np.abs(big.weight.data).max() > 0.99 * bound
    assert np.abs(big.bias.data).max() <= bound
    assert Linear(3, 2, bias=False).bias is None
    assert Linear(3, 2, bias=False).num_parameters() == 6
    with pytest.raises(ValueError, match=r"Linear\(9, 4\).*\(2, 5\)"):
        layer(Tensor(np.zeros((2, 5), dtype=np.float32)))


def test_manual_seed_makes_init_repeatable():
    mg.manual_seed(7)
    a = Linear(5, 3).weight.data.copy()
    mg.manual_seed(7)
    b = Linear(5, 3).weight.data.copy()
    c = Linear(5, 3).weight.data.copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)
    d = Linear(5, 3, rng=np.random.default_rng(1)).weight.data
    e = Linear(5, 3, rng=np.random.default_rng(1)).weight.data
    np.testing.assert_array_equal(d, e)


# ---- Embedding -----------------------------------------------------------------------------
def test_embedding_lookup_and_gradient_accumulates_repeats():
    emb = Embedding(6, 3, dtype=np.float64, rng=np.random.default_rng(0))
    idx = np.array([[1, 2, 1], [5, 1, 0]])
    out = emb(Tensor(idx))
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    w = np.random.default_rng(1).standard_normal(out.shape)
    (out * Tensor(w)).sum().backward()
    expected = np.zeros((6, 3))
    np.add.at(expected, idx, w)
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-12)


def test_embedding_gradients_match_central_differences():
    emb = Embedding(5, 2, dtype=np.float64, rng=np.random.default_rng(2))
    idx = np.array([[0, 3], [3, 4]])
    _check_grads(lambda: emb(idx).tanh(), [emb.weight])
    pad = Embedding(5, 2, padding_idx=3, dtype=np.float64, rng=np.random.default_rng(2))
    pad(idx).sum().backward()
    np.testing.assert_array_equal(pad.weight.grad[3], 0)


def test_embedding_padding_row_is_zero_and_gets_no_gradient():
    emb = Embedding(4, 3, padding_idx=2, dtype=np.float64)
    np.testing.assert_array_equal(emb.weight.data[2], 0)
    idx = np.array([2, 1, 2, 3])
    out = emb(idx)
    np.testing.assert_array_equal(out.data[0], 0)
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[2], 0)
    np.testing.assert_array_equal(emb.weight.grad[1], 1)
    assert Embedding(4, 3, padding_idx=-1).padding_idx == 3
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(4, 3, padding_idx=4)


def test_embedding_init_is_standard_normal_and_checks_indices():
    emb = Embedding(500, 40, rng=np.random.default_rng(0))
    assert emb.weight.shape == (500, 40) and emb.weight.dtype == np.float32
    assert abs(emb.weight.data.mean()) < 0.02
    assert abs(emb.weight.data.std() - 1) < 0.02
    with pytest.raises((IndexError, ValueError), match="500"):
        emb(np.array([0, 500]))
    with pytest.raises((TypeError, ValueError), match="integers"):
        emb(np.array([0.5]))


# ---- Dropout, Sequential, modes --------------------------------------------------------------
def test_dropout_train_and_eval():
    drop = Dropout(0.25, rng=np.random.default_rng(0))
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = drop(x)
    zeros = (y.data == 0).mean()
    assert 0.22 < zeros < 0.28
    np.testing.assert_allclose(y.data[y.data != 0], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)  # gradient is the mask
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).data, x.data)
    assert np.all(Dropout(1.0)(x).data == 0)
    with pytest.raises(ValueError, match="p must be"):
        Dropout(1.5)


def test_dropout_masks_follow_manual_seed():
    x = Tensor(np.ones((4, 30), dtype=np.float32))
    mg.manual_seed(3)
    a = Dropout(0.5)(x).data
    mg.manual_seed(3)
    b = Dropout(0.5)(x).data
    c = Dropout(0.5)(x).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_sequential_order_names_and_train_eval():
    mg.manual_seed(0)
    model = Sequential(Linear(3, 4), Tanh(), Dropout(0.5), Linear(4, 2))
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "3.weight",
                                                        "3.bias"]
    assert len(model) == 4 and isinstance(model[1], Tanh)
    assert model.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2
    model.eval()
    assert not any(m.training for m in model.modules())
    x = Tensor(np.ones((5, 3), dtype=np.float32))
    expected = model[3](model[0](x).tanh())
    np.testing.assert_allclose(model(x).data, expected.data, rtol=1e-6)
    model.train()
    assert all(m.training for m in model.modules())
    named = Sequential(OrderedDict(enc=Linear(2, 2), act=ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["enc.weight", "enc.bias"]
    with pytest.raises(TypeError, match="not a Module"):
        Sequential(Linear(2, 2), "relu")


def test_to_double_float():
    model = Sequential(Linear(3, 2), Embedding(4, 3))
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    with pytest.raises(TypeError, match="floating"):
        model.to(np.int32)


# ---- state_dict ------------------------------------------------------------------------------
def test_state_dict_round_trip():
    a = Sequential(Embedding(5, 3), Linear(3, 2))
    b = Sequential(Embedding(5, 3), Linear(3, 2))
    state = a.state_dict()
    assert list(state) == ["0.weight", "1.weight", "1.bias"]
    state["1.bias"][:] = 99  # a copy: the model is untouched
    assert not np.any(a[1].bias.data == 99)
    assert b.load_state_dict(a.state_dict()) == ([], [])
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert p.data is not q.data


def test_load_state_dict_strict_errors_list_every_key():
    model = Sequential(Linear(3, 2), Linear(2, 1))
    state = model.state_dict()
    del state["0.bias"]
    state["2.weight"] = np.zeros(1)
    state["1.weight"] = np.zeros((5, 5))
    with pytest.raises(StateDictError) as err:
        model.load_state_dict(state)
    msg = str(err.value)
    assert "missing keys: ['0.bias']" in msg
    assert "unexpected keys: ['2.weight']" in msg
    assert "1.weight: checkpoint (5, 5) vs model (1, 2)" in msg
    assert isinstance(err.value, KeyError) and isinstance(err.value, RuntimeError)
    # non-strict tolerates missing/unexpected keys but never a wrong shape
    with pytest.raises(StateDictError, match="wrongly-shaped"):
        model.load_state_dict(state, strict=False)
    del state["1.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["0.bias", "1.weight"] and unexpected == ["2.weight"]


# ---- PyTorch comparison ----------------------------------------------------------------------
def test_linear_and_embedding_match_torch():
    torch = pytest.importorskip("torch")
    lin = Linear(6, 4, dtype=np.float64)
    tlin = torch.nn.Linear(6, 4, dtype=torch.float64)
    assert [(n, tuple(p.shape)) for n, p in tlin.named_parameters()] == \
        [(n, p.shape) for n, p in lin.named_parameters()]
    tlin.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 6))
    np.testing.assert_allclose(lin(Tensor(x)).data, tlin(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12)
    # torch's init bounds are the same: both within 1/sqrt(6)
    assert tlin.weight.abs().max().item() <= 1 / np.sqrt(6)

    emb = Embedding(7, 3, padding_idx=1, dtype=np.float64)
    temb = torch.nn.Embedding(7, 3, padding_idx=1, dtype=torch.float64)
    assert [(n, tuple(p.shape)) for n, p in temb.named_parameters()] == \
        [(n, p.shape) for n, p in emb.named_parameters()]
    temb.load_state_dict({k: torch.tensor(v) for k, v in emb.state_dict().items()})
    idx = np.array([[1, 4], [6, 1]])
    out, tout = emb(idx), temb(torch.tensor(idx))
    np.testing.assert_array_equal(out.data, tout.detach().numpy())
    g = np.random.default_rng(1).standard_normal(out.shape)
    (out * Tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(emb.weight.grad, temb.weight.grad.numpy(), rtol=1e-12)


def test_linear_rejects_an_input_of_another_dtype_instead_of_upcasting():
    layer = Linear(3, 2)  # float32 parameters
    x = Tensor(np.ones((4, 3), np.float64))
    with pytest.raises(TypeError, match=r"Linear\(3, 2\): input dtype float64 differs"):
        layer(x)
    assert layer(x.float()).dtype == np.float32
    assert layer.double()(x).dtype == np.float64
