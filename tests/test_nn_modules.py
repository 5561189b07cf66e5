"""nn containers, LayerNorm, activations and losses: registration and state_dict names as
PyTorch's (layers.0.weight), parameter names and shapes, and outputs and gradients equal to the
same torch modules (float64, copied weights)."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor, nn

RNG = np.random.default_rng(5)


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 3)])
        self.heads = nn.ModuleDict({"a": nn.Linear(3, 2), "b": nn.Linear(3, 1, bias=False)})
        self.norm = nn.LayerNorm(3)

    def forward(self, x, head="a"):
        for layer in self.layers:
            x = layer(x).tanh()
        return self.heads[head](self.norm(x))


def test_module_list_and_dict_register_parameters_with_torch_names():
    model = Stack()
    names = list(model.state_dict())
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                     "heads.a.weight", "heads.a.bias", "heads.b.weight", "norm.weight",
                     "norm.bias"]
    assert len(list(model.parameters())) == 9
    x = Tensor(RNG.standard_normal((2, 4)).astype(np.float32))
    model(x).sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "heads.b" not in n)


def test_state_dict_names_equal_torch():
    torch = pytest.importorskip("torch")

    class TorchStack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 3)])
            self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 2),
                                              "b": torch.nn.Linear(3, 1, bias=False)})
            self.norm = torch.nn.LayerNorm(3)
    ref = {k: tuple(v.shape) for k, v in TorchStack().state_dict().items()}
    ours = {k: v.shape for k, v in Stack().state_dict().items()}
    assert ours == ref


def test_module_list_operations_renumber_like_a_list():
    a, b, c, d = (nn.Linear(1, 1) for _ in range(4))
    ml = nn.ModuleList([a, b])
    ml.append(c)
    ml.insert(0, d)
    assert list(ml) == [d, a, b, c] and len(ml) == 4 and ml[-1] is c
    del ml[1]
    assert list(ml) == [d, b, c]
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                      "1.bias", "2.weight", "2.bias"]
    ml[0] = a
    assert ml[0] is a and "0.weight" in ml.state_dict()
    assert isinstance(ml[1:], nn.ModuleList) and list(ml[1:]) == [b, c]
    ml += [d]
    assert len(ml) == 4
    with pytest.raises(IndexError, match="out of range"):
        ml[4]
    with pytest.raises(TypeError, match="not a Module"):
        ml.append([nn.Linear(1, 1)])
    with pytest.raises(NotImplementedError, match="iterate"):
        ml(Tensor([1.0]))


def test_module_dict_operations():
    md = nn.ModuleDict([("x", nn.Linear(1, 2)), ("y", nn.Tanh())])
    assert md.keys() == ["x", "y"] and "x" in md and len(md) == 2
    md["z"] = nn.Linear(2, 1)
    md["x"] = nn.Linear(1, 3)  # replacing keeps the key's place, as in a dict
    assert [k for k, _ in md.items()] == ["x", "y", "z"] and md["x"].out_features == 3
    popped = md.pop("x")
    assert isinstance(popped, nn.Linear) and "x" not in md
    assert list(md.state_dict()) == ["z.weight", "z.bias"]
    with pytest.raises(KeyError, match="keys"):
        md["missing"]
    with pytest.raises(KeyError, match="shadow"):
        md["keys"] = nn.Tanh()
    with pytest.raises(KeyError, match="'.'"):
        md["a.b"] = nn.Tanh()
    md.clear()
    assert len(md) == 0 and list(md.parameters()) == []


def test_train_eval_and_load_state_dict_reach_listed_modules():
    model = Stack()
    model.eval()
    assert not model.layers[1].training and not model.heads["a"].training
    other = Stack()
    other.load_state_dict(model.state_dict())
    for (n, p), (_, q) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)


def test_layer_norm_parameters_and_options():
    ln = nn.LayerNorm((3, 4), eps=1e-3)
    assert ln.weight.shape == (3, 4) and ln.bias.shape == (3, 4)
    assert (ln.weight.data == 1).all() and (ln.bias.data == 0).all()
    assert list(nn.LayerNorm(5, elementwise_affine=False).parameters()) == []
    assert list(nn.LayerNorm(5, bias=False).state_dict()) == ["weight"]
    with pytest.raises(TypeError, match="dtype"):
        nn.LayerNorm(4)(Tensor(np.zeros((2, 4))))


def test_flatten_identity_and_shapes():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Flatten(-2, -1)(x).shape == (2, 12)
    assert nn.Identity(7, foo=1)(x) is x
    with pytest.raises(ValueError, match="Flatten"):
        nn.Flatten(2, 1)(x)


def test_loss_modules_validate_options():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_sequential_classifier_with_new_modules_trains():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8),
                          nn.Linear(8, 3), nn.LogSoftmax(dim=-1))
    x = Tensor(RNG.standard_normal((16, 2, 3)).astype(np.float32))
    y = RNG.integers(0, 3, 16)
    opt = mg.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.NLLLoss()
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first


# ---- against torch modules -----------------------------------------------------------------

def _copy_to_torch(mg_module, torch_module):
    import torch
    with torch.no_grad():
        for name, value in mg_module.state_dict().items():
            torch_module.state_dict()[name].copy_(torch.tensor(value))


def _check_module(mg_mod, torch_mod, x, target=None, permute=False):
    import torch
    mg_mod.double()
    torch_mod.double()
    _copy_to_torch(mg_mod, torch_mod)
    mx = Tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    if target is None:
        mo, to = mg_mod(mx), torch_mod(tx)
    else:
        tt = torch.tensor(target)
        mo = mg_mod(mx, target if target.dtype.kind in "iu" else Tensor(target))
        to = torch_mod(tx.movedim(-1, 1) if permute else tx, tt)
    np.testing.assert_allclose(mo.data, to.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = RNG.standard_normal(mo.shape)
    (mo * Tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    tp = dict(torch_mod.named_parameters())
    for name, p in mg_mod.named_parameters():
        np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def _torch_cases():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    x3 = RNG.standard_normal((2, 3, 4))
    t = RNG.integers(0, 4, (2, 3))
    t[1, 2] = -100
    t_ign = t.copy()
    t_ign[1, 2] = 1
    probs = RNG.random((2, 3, 4))
    cw, ew, pw = RNG.random(4) + 0.2, RNG.random((3, 4)), RNG.random(4) + 0.5
    ln = nn.LayerNorm(4)
    ln.weight.data[...] = RNG.standard_normal(4)
    ln.bias.data[...] = RNG.standard_normal(4)
    return {
        "LayerNorm": (ln, tnn.LayerNorm(4), x3, None),
        "LayerNorm2d_nobias": (nn.LayerNorm((3, 4), bias=False),
                               tnn.LayerNorm((3, 4), bias=False), x3, None),
        "LayerNorm_noaffine": (nn.LayerNorm(4, elementwise_affine=False),
                               tnn.LayerNorm(4, elementwise_affine=False), x3, None),
        "Softmax": (nn.Softmax(dim=1), tnn.Softmax(dim=1), x3, None),
        "LogSoftmax": (nn.LogSoftmax(dim=-1), tnn.LogSoftmax(dim=-1), x3, None),
        "GELU": (nn.GELU(), tnn.GELU(), x3, None),
        "GELU_tanh": (nn.GELU("tanh"), tnn.GELU("tanh"), x3, None),
        "ReLU": (nn.ReLU(), tnn.ReLU(), x3, None),
        "Tanh": (nn.Tanh(), tnn.Tanh(), x3, None),
        "Sigmoid": (nn.Sigmoid(), tnn.Sigmoid(), x3, None),
        "Identity": (nn.Identity(), tnn.Identity(), x3, None),
        "Flatten": (nn.Flatten(), tnn.Flatten(), x3, None),
        "Sequential": (nn.Sequential(OrderedDict(fc=nn.Linear(4, 5), act=nn.GELU(),
                                                 norm=nn.LayerNorm(5))),
                       tnn.Sequential(OrderedDict(fc=tnn.Linear(4, 5), act=tnn.GELU(),
                                                  norm=tnn.LayerNorm(5))), x3, None),
        "CrossEntropyLoss": (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), x3, t),
        "CrossEntropyLoss_sum_ignore1": (nn.CrossEntropyLoss(ignore_index=1, reduction="sum"),
                                         tnn.CrossEntropyLoss(ignore_index=1, reduction="sum"),
                                         x3, t_ign),
        "NLLLoss": (nn.NLLLoss(), tnn.NLLLoss(), x3, t),
        "NLLLoss_none": (nn.NLLLoss(reduction="none"), tnn.NLLLoss(reduction="none"), x3,
                         t_ign),
        "NLLLoss_weight": (nn.NLLLoss(weight=cw), tnn.NLLLoss(weight=torch.tensor(cw)), x3, t),
        "CrossEntropyLoss_weight": (nn.CrossEntropyLoss(weight=cw, reduction="sum"),
                                    tnn.CrossEntropyLoss(weight=torch.tensor(cw),
                                                         reduction="sum"), x3, t),
        "MSELoss": (nn.MSELoss(), tnn.MSELoss(), x3, probs),
        "MSELoss_sum": (nn.MSELoss(reduction="sum"), tnn.MSELoss(reduction="sum"), x3, probs),
        "BCEWithLogitsLoss": (nn.BCEWithLogitsLoss(), tnn.BCEWithLogitsLoss(), x3, probs),
        "BCEWithLogitsLoss_none": (nn.BCEWithLogitsLoss(reduction="none"),
                                   tnn.BCEWithLogitsLoss(reduction="none"), x3, probs),
        "BCEWithLogitsLoss_weights": (nn.BCEWithLogitsLoss(weight=ew, pos_weight=pw),
                                      tnn.BCEWithLogitsLoss(weight=torch.tensor(ew),
                                                            pos_weight=torch.tensor(pw)),
                                      x3, probs),
    }


NAMES = ["LayerNorm", "LayerNorm2d_nobias", "LayerNorm_noaffine", "Softmax", "LogSoftmax",
         "GELU", "GELU_tanh", "ReLU", "Tanh", "Sigmoid", "Identity", "Flatten", "Sequential",
         "CrossEntropyLoss", "CrossEntropyLoss_sum_ignore1", "NLLLoss", "NLLLoss_none",
         "NLLLoss_weight", "CrossEntropyLoss_weight", "MSELoss", "MSELoss_sum",
         "BCEWithLogitsLoss", "BCEWithLogitsLoss_none", "BCEWithLogitsLoss_weights"]


@pytest.mark.parametrize("name", NAMES)
def test_module_matches_torch(name):
    mg_mod, torch_mod, x, target = _torch_cases()[name]
    classes = name.startswith(("CrossEntropy", "NLL"))
    _check_module(mg_mod, torch_mod, x, target, permute=classes)


def test_model_with_module_list_matches_torch_after_loading_its_state_dict():
    torch = pytest.importorskip("torch")
    model = Stack().double()
    ref = torch.nn.Module()
    ref.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 3)])
    ref.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 2),
                                     "b": torch.nn.Linear(3, 1, bias=False)})
    ref.norm = torch.nn.LayerNorm(3)
    ref.double()
    model.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = RNG.standard_normal((5, 4))
    h = torch.tensor(x)
    for layer in ref.layers:
        h = torch.tanh(layer(h))
    expected = ref.heads["a"](ref.norm(h))
    np.testing.assert_allclose(model(Tensor(x)).data, expected.detach().numpy(), rtol=1e-12)


def test_plain_list_of_layers_warns_and_module_list_does_not():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(2, 2)]

    with pytest.warns(UserWarning, match="ModuleList"):
        model = Plain()
    assert list(model.parameters()) == []  # what the warning is about

    class Listed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2)])
            self.sizes = [2, 2]  # a list without modules is fine

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(Listed().parameters())) == 2


@pytest.mark.parametrize("make", [
    lambda **kw: nn.RNNCell(3, 4, **kw), lambda **kw: nn.GRUCell(3, 4, **kw),
    lambda **kw: nn.LSTMCell(3, 4, **kw), lambda **kw: nn.GRU(3, 4, **kw),
    lambda **kw: nn.LSTM(3, 4, num_layers=2, bidirectional=True, **kw)])
def test_recurrent_modules_take_float64_input_after_double(make):
    """model.double() (a PyTorch habit) also moves the dtype the recurrent layers check their
    input against; the result equals the same weights in a layer built in float64."""
    model = make().double()
    ref = make(dtype=np.float64)
    ref.load_state_dict(model.state_dict())
    cell = "Cell" in type(model).__name__
    x = Tensor(RNG.standard_normal((2, 3) if cell else (5, 2, 3)))
    out, expected = model(x), ref(x)
    first = lambda r: r[0] if isinstance(r, tuple) else r  # noqa: E731 (output, or h of a cell)
    out, expected = first(out), first(expected)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-12)
    model.float()
    back = model(x.float())
    assert first(back).dtype == np.float32


def test_softmax_modules_take_dim_or_axis():
    x = Tensor(RNG.standard_normal((2, 3)))
    np.testing.assert_allclose(nn.Softmax(axis=0)(x).data.sum(axis=0), 1.0)
    np.testing.assert_allclose(nn.Softmax(dim=0)(x).data, nn.Softmax(axis=0)(x).data)
    np.testing.assert_allclose(np.exp(nn.LogSoftmax()(x).data).sum(axis=-1), 1.0)
    with pytest.raises(TypeError, match="same argument"):
        nn.Softmax(dim=1, axis=1)
