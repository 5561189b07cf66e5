"""Values and gradients of every primitive and of the three losses agree with PyTorch in
float64 (cross_entropy with ignore_index and (N, T, C) logits, classes last in minigrad)."""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.standard_normal(shape)


def compare(mg_fn, torch_fn, arrays, consts=()):
    """Run both on the same float64 arrays; compare outputs and input gradients."""
    mx = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    tx = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    mo, to = mg_fn(*mx, *consts), torch_fn(*tx, *consts)
    np.testing.assert_allclose(mo.data, to.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = RNG.standard_normal(mo.shape)
    (mo * Tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for k, (m, t) in enumerate(zip(mx, tx)):
        tg = np.zeros(m.shape) if t.grad is None else t.grad.numpy()
        mgrad = np.zeros(m.shape) if m.grad is None else m.grad
        np.testing.assert_allclose(mgrad, tg, rtol=1e-9, atol=1e-12, err_msg=f"input {k}")


IDX = np.array([2, 0, 2, 1])
MASK = RNG.random((3, 4)) > 0.5

CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)]),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [(3, 1), (1, 4)]),
    "neg": (lambda a: -a, lambda a: -a, [(3, 4)]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
    "div": (lambda a, b: a / (b * b + 0.5), lambda a, b: a / (b * b + 0.5), [(3, 4), (4,)]),
    "pow": (lambda a: (a * a + 0.1) ** 1.5, lambda a: (a * a + 0.1) ** 1.5, [(3, 4)]),
    "matmul_2d": (lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4, 2)]),
    "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    "tanh": (lambda a: a.tanh(), torch.tanh, [(3, 4)]),
    "sigmoid": (lambda a: (a * 40).sigmoid(), lambda a: torch.sigmoid(a * 40), [(3, 4)]),
    "relu": (lambda a: a.relu(), torch.relu, [(3, 4)]),
    "exp": (lambda a: a.exp(), torch.exp, [(3, 4)]),
    "log": (lambda a: (a * a + 0.2).log(), lambda a: torch.log(a * a + 0.2), [(3, 4)]),
    "sum": (lambda a: a.sum(axis=1, keepdims=True), lambda a: a.sum(dim=1, keepdim=True),
            [(3, 4)]),
    "mean": (lambda a: a.mean(axis=(0, 2)), lambda a: a.mean(dim=(0, 2)), [(2, 3, 4)]),
    "max": (lambda a: a.max(axis=-1), lambda a: a.max(dim=-1).values, [(3, 4)]),
    "reshape": (lambda a: a.reshape(4, 3) * 1.0, lambda a: a.reshape(4, 3) * 1.0, [(3, 4)]),
    "transpose": (lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)]),
    "getitem": (lambda a: a[IDX, 1:], lambda a: a[torch.tensor(IDX), 1:], [(3, 4)]),
    "concat": (lambda a, b: mg.concat([a, b, a], axis=1),
               lambda a, b: torch.cat([a, b, a], dim=1), [(3, 4), (3, 2)]),
    "stack": (lambda a, b: mg.stack([a, b], axis=1), lambda a, b: torch.stack([a, b], dim=1),
              [(3, 4), (3, 4)]),
    "split": (lambda a: mg.split(a, [1, 3], axis=1)[1] * mg.split(a, 2, axis=1)[0][:, :1],
              lambda a: torch.split(a, [1, 3], dim=1)[1] * torch.split(a, 2, dim=1)[0][:, :1],
              [(3, 4)]),
    "softmax": (lambda a: F.softmax(a, 0), lambda a: torch.softmax(a, 0), [(3, 4)]),
    "log_softmax": (lambda a: F.log_softmax(a), lambda a: torch.log_softmax(a, -1), [(3, 4)]),
    "where": (lambda a, b: F.where(MASK, a, b),
              lambda a, b: torch.where(torch.tensor(MASK), a, b), [(3, 4), (4,)]),
    "embedding": (lambda w: F.embedding(np.array([[1, 1], [3, 0]]), w),
                  lambda w: TF.embedding(torch.tensor([[1, 1], [3, 0]]), w), [(4, 3)]),
    "embedding_padding": (
        lambda w: F.embedding(np.array([[1, 1], [3, 0]]), w, padding_idx=1),
        lambda w: TF.embedding(torch.tensor([[1, 1], [3, 0]]), w, padding_idx=1), [(4, 3)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), TF.linear, [(2, 5, 3), (4, 3), (4,)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_primitive_matches_torch(name):
    mg_fn, torch_fn, shapes = CASES[name]
    compare(mg_fn, torch_fn, [randn(*s) for s in shapes])


def test_dropout_matches_torch_semantics():
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.25, rng=0)
    kept = y.data != 0
    assert set(np.unique(y.data)) == {0.0, 1 / 0.75}
    assert abs(kept.mean() - 0.75) < 0.02
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.75)
    assert F.dropout(x, 0.25, training=False) is x
    tx = torch.ones(3, requires_grad=True)
    assert torch.equal(TF.dropout(tx, 0.25, training=False), tx)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("lead", [(6,), (2, 5)])
def test_cross_entropy_matches_torch_with_ignore_index(reduction, lead):
    c = 4
    x = randn(*lead, c) * 3
    t = RNG.integers(0, c, lead)
    t.flat[1] = -100
    t.flat[-1] = -100
    # torch puts classes in dim 1: (N, T, C) -> (N, C, T); minigrad keeps them last
    compare(lambda a: F.cross_entropy(a, t, reduction=reduction),
            lambda a: TF.cross_entropy(a if len(lead) == 1 else a.transpose(1, 2),
                                       torch.tensor(t), reduction=reduction), [x])


def test_cross_entropy_custom_ignore_index():
    x, t = randn(5, 3), np.array([0, 2, 2, 1, 2])
    compare(lambda a: F.cross_entropy(a, t, ignore_index=2),
            lambda a: TF.cross_entropy(a, torch.tensor(t), ignore_index=2), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    compare(lambda a, b: F.mse_loss(a, b, reduction),
            lambda a, b: TF.mse_loss(a, b, reduction=reduction), [randn(3, 4), randn(3, 4)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_matches_torch(reduction, weighted):
    x, y = randn(3, 4) * 5, RNG.random((3, 4))
    pw = RNG.random(4) + 0.5 if weighted else None
    # torch treats pos_weight as a constant (minigrad also gives it a gradient: gradchecked)
    compare(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction, pos_weight=pw),
            lambda a, b: TF.binary_cross_entropy_with_logits(
                a, b, reduction=reduction,
                pos_weight=None if pw is None else torch.tensor(pw)), [x, y])


def test_losses_stay_finite_for_huge_logits():
    x = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]]), requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 1])) + F.binary_cross_entropy_with_logits(
        x, np.ones((2, 3)))
    loss.backward()
    tx = torch.tensor(x.data, requires_grad=True)
    tl = TF.cross_entropy(tx, torch.tensor([1, 1])) + TF.binary_cross_entropy_with_logits(
        tx, torch.ones(2, 3, dtype=torch.float64))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0])),
     r"cross_entropy: target must hold integer class indices, got dtype float64 \(shape \(2,\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1, 2])),
     r"cross_entropy: target shape \(3,\) must equal .*logits \(2, 3\) -> \(2,\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3])),
     r"cross_entropy: target value 3 is out of range for 3 classes \(logits \(2, 3\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), reduction="avg"),
     r"cross_entropy: reduction must be one of"),
    (lambda: F.mse_loss(Tensor(np.zeros((4, 1))), np.zeros(4)),
     r"mse_loss: target shape \(4,\) must equal .* input shape \(4, 1\)"),
    (lambda: F.binary_cross_entropy_with_logits(Tensor(np.zeros((2, 3))), np.zeros(3)),
     r"binary_cross_entropy_with_logits: target shape \(3,\) must equal the logits shape"),
    (lambda: F.embedding(np.array([0, 5]), Tensor(np.zeros((5, 2)))),
     r"embedding: index 5 is out of range for weight of shape \(5, 2\)"),
    (lambda: F.where(np.array([1, 0]), Tensor(np.zeros(2)), 1.0),
     r"where: cond must be a boolean mask"),
    (lambda: F.dropout(Tensor(np.zeros(2)), 1.5), r"dropout: p must be in \[0, 1\]"),
    (lambda: F.linear(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 2)))),
     r"linear: input \(2, 3\) and weight \(4, 2\) do not fit"),
    (lambda: Tensor(np.zeros((2, 3))) @ Tensor(np.zeros((2, 3))),
     r"matmul: shapes \(2, 3\) and \(2, 3\) do not align"),
])
def test_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dropout_without_rng_follows_the_default_generator():
    init = pytest.importorskip("minigrad.nn.init")
    x = Tensor(np.ones((4, 8)))
    mg.manual_seed(7)
    a = F.dropout(x, 0.5).data
    mg.manual_seed(7)
    b = F.dropout(x, 0.5).data
    c = F.dropout(x, 0.5).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_cross_entropy_with_every_target_ignored_matches_torch():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    tx = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    for reduction in ("mean", "sum"):
        x.grad, tx.grad = None, None
        loss = F.cross_entropy(x, np.array([-100, -100]), reduction=reduction)
        tl = TF.cross_entropy(tx, torch.tensor([-100, -100]), reduction=reduction)
        loss.backward()
        tl.backward()
        np.testing.assert_array_equal(loss.data, tl.detach().numpy())   # nan for 'mean'
        np.testing.assert_array_equal(x.grad, tx.grad.numpy())
