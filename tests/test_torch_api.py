"""The PyTorch-style Tensor API against torch 2.13.0 in float64: values and gradients of every
new op, the (values, indices) results, integer results, and the constructors' dtypes."""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import Tensor

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(2024)


def randn(*shape):
    return RNG.standard_normal(shape)


def compare(mg_fn, torch_fn, arrays):
    """Run both on the same float64 arrays; compare every float output and input gradients,
    and integer outputs exactly."""
    mx = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    tx = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    mo, to = mg_fn(*mx), torch_fn(*tx)
    mo = mo if isinstance(mo, tuple) else (mo,)
    to = to if isinstance(to, tuple) else (to,)
    assert len(mo) == len(to)
    mloss, tloss = None, None
    for m, t in zip(mo, to):
        assert m.shape == tuple(t.shape)
        if t.dtype != torch.float64:
            assert m.dtype.kind in "iub" and not m.requires_grad
            np.testing.assert_array_equal(m.data, t.numpy())
            continue
        np.testing.assert_allclose(m.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
        w = RNG.standard_normal(m.shape)
        mterm, tterm = (m * Tensor(w)).sum(), (t * torch.tensor(w)).sum()
        mloss = mterm if mloss is None else mloss + mterm
        tloss = tterm if tloss is None else tloss + tterm
    if mloss is None:
        return
    mloss.backward()
    tloss.backward()
    for k, (m, t) in enumerate(zip(mx, tx)):
        tg = np.zeros(m.shape) if t.grad is None else t.grad.numpy()
        mgrad = np.zeros(m.shape) if m.grad is None else m.grad
        np.testing.assert_allclose(mgrad, tg, rtol=1e-9, atol=1e-12, err_msg=f"input {k}")


IDX = np.array([[0, 2, 2], [1, 0, 0]])
SEL = np.array([2, 0, 2])
MASK = RNG.random((3, 4)) > 0.5
LO = RNG.standard_normal(5) * 0.5

CASES = {
    "pow_tensor": (lambda a, b: (a * a + 0.5) ** b, lambda a, b: (a * a + 0.5) ** b,
                   [(3, 4), (4,)]),
    "rpow": (lambda b: 2.0 ** b, lambda b: 2.0 ** b, [(3,)]),
    "mg_pow": (lambda a, b: mg.pow(a.abs() + 0.1, b), lambda a, b: torch.pow(a.abs() + 0.1, b),
               [(2, 3), (2, 1)]),
    "abs": (lambda a: a.abs(), torch.abs, [(3, 4)]),
    "sqrt": (lambda a: (a * a + 0.1).sqrt(), lambda a: (a * a + 0.1).sqrt(), [(3, 4)]),
    "clamp": (lambda a: a.clamp(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), [(4, 5)]),
    "clamp_min": (lambda a: a.clamp(min=0.1), lambda a: a.clamp(min=0.1), [(4, 5)]),
    "clip_max": (lambda a: a.clip(max=0.2), lambda a: a.clip(max=0.2), [(4, 5)]),
    "clamp_tensor_bounds": (lambda a: a.clamp(Tensor(LO), Tensor(LO + 0.8)),
                            lambda a: a.clamp(torch.tensor(LO), torch.tensor(LO + 0.8)),
                            [(3, 5)]),
    "var": (lambda a: a.var(dim=1), lambda a: a.var(dim=1), [(3, 5)]),
    "var_all": (lambda a: a.var(), lambda a: a.var(), [(3, 5)]),
    "var_biased": (lambda a: a.var(0, unbiased=False, keepdim=True),
                   lambda a: a.var(0, unbiased=False, keepdim=True), [(3, 5)]),
    "var_correction": (lambda a: a.var(axis=(0, 2), ddof=2),
                       lambda a: a.var(dim=(0, 2), correction=2), [(3, 2, 4)]),
    "std": (lambda a: a.std(dim=-1), lambda a: a.std(dim=-1), [(3, 5)]),
    "std_all": (lambda a: a.std(), lambda a: a.std(), [(3, 5)]),
    "norm": (lambda a: a.norm(), lambda a: a.norm(), [(3, 5)]),
    "norm_dim": (lambda a: a.norm(dim=1, keepdim=True), lambda a: a.norm(dim=1, keepdim=True),
                 [(3, 5)]),
    "norm_p1": (lambda a: a.norm(1, dim=0), lambda a: a.norm(1, dim=0), [(3, 5)]),
    "norm_p3": (lambda a: a.norm(3), lambda a: a.norm(3), [(3, 5)]),
    "norm_inf": (lambda a: a.norm(float("inf"), dim=1), lambda a: a.norm(float("inf"), dim=1),
                 [(3, 5)]),
    "cumsum": (lambda a: a.cumsum(dim=1), lambda a: a.cumsum(dim=1), [(3, 5)]),
    "cumsum_0": (lambda a: a.cumsum(0), lambda a: a.cumsum(0), [(3, 2, 2)]),
    "max_all": (lambda a: a.max(), lambda a: a.max(), [(3, 5)]),
    "min_all": (lambda a: a.min(), lambda a: a.min(), [(3, 5)]),
    "max_dim": (lambda a: tuple(a.max(dim=1)), lambda a: tuple(a.max(dim=1)), [(3, 5)]),
    "max_dim_positional_keepdim": (lambda a: tuple(a.max(0, True)),
                                   lambda a: tuple(a.max(0, True)), [(3, 5)]),
    "min_dim": (lambda a: tuple(a.min(-1)), lambda a: tuple(a.min(-1)), [(2, 3, 4)]),
    "max_axis_values": (lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [(3, 5)]),
    "amax": (lambda a: a.amax(dim=(0, 1)), lambda a: a.amax(dim=(0, 1)), [(3, 4, 2)]),
    "amin": (lambda a: a.amin(1, keepdim=True), lambda a: a.amin(1, keepdim=True), [(3, 4)]),
    "argmax": (lambda a: a.argmax(dim=1), lambda a: a.argmax(dim=1), [(3, 5)]),
    "argmax_all": (lambda a: a.argmax(), lambda a: a.argmax(), [(3, 5)]),
    "argmin_keepdim": (lambda a: a.argmin(dim=0, keepdim=True),
                       lambda a: a.argmin(dim=0, keepdim=True), [(3, 5)]),
    "topk": (lambda a: tuple(a.topk(2)), lambda a: tuple(a.topk(2)), [(3, 5)]),
    "topk_smallest": (lambda a: tuple(a.topk(3, dim=0, largest=False)),
                      lambda a: tuple(a.topk(3, dim=0, largest=False)), [(4, 2)]),
    "softmax_dim": (lambda a: F.softmax(a, dim=1), lambda a: torch.softmax(a, dim=1), [(3, 4)]),
    "log_softmax_dim": (lambda a: a.log_softmax(dim=0), lambda a: a.log_softmax(dim=0),
                        [(3, 4)]),
    "sum_dim": (lambda a: a.sum(dim=1, keepdim=True), lambda a: a.sum(dim=1, keepdim=True),
                [(3, 4)]),
    "mean_dim": (lambda a: a.mean(dim=(0, 2)), lambda a: a.mean(dim=(0, 2)), [(2, 3, 4)]),
    "unsqueeze": (lambda a: a.unsqueeze(1) * 1.0, lambda a: a.unsqueeze(1) * 1.0, [(3, 4)]),
    "unsqueeze_neg": (lambda a: a.unsqueeze(-1) * 1.0, lambda a: a.unsqueeze(-1) * 1.0,
                      [(3, 4)]),
    "squeeze": (lambda a: a.squeeze() * 1.0, lambda a: a.squeeze() * 1.0, [(3, 1, 4, 1)]),
    "squeeze_dim": (lambda a: a.squeeze(dim=1) * 1.0, lambda a: a.squeeze(dim=1) * 1.0,
                    [(3, 1, 1)]),
    "squeeze_not_one": (lambda a: a.squeeze(0) * 1.0, lambda a: a.squeeze(0) * 1.0, [(3, 1)]),
    "flatten": (lambda a: a.flatten(1) * 1.0, lambda a: a.flatten(1) * 1.0, [(2, 3, 4)]),
    "flatten_mid": (lambda a: a.flatten(0, 1) * 1.0, lambda a: a.flatten(0, 1) * 1.0,
                    [(2, 3, 4)]),
    "view_minus_one": (lambda a: a.view(-1, 6), lambda a: a.view(-1, 6), [(2, 3, 4)]),
    "reshape_minus_one": (lambda a: a.reshape(2, -1), lambda a: a.reshape(2, -1), [(2, 3, 4)]),
    "permute": (lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [(2, 3, 4)]),
    "expand": (lambda a: a.expand(2, 3, 4), lambda a: a.expand(2, 3, 4), [(3, 1)]),
    "expand_keep": (lambda a: a.expand(-1, 5), lambda a: a.expand(-1, 5), [(3, 1)]),
    "repeat": (lambda a: a.repeat(2, 1, 3), lambda a: a.repeat(2, 1, 3), [(3, 2)]),
    "chunk": (lambda a: a.chunk(3, dim=1), lambda a: a.chunk(3, dim=1), [(2, 7)]),
    "split": (lambda a: a.split(2, dim=0), lambda a: a.split(2, dim=0), [(5, 3)]),
    "split_sizes": (lambda a: a.split([1, 3], -1), lambda a: a.split([1, 3], -1), [(2, 4)]),
    "mg_cat": (lambda a, b: mg.cat([a, b], dim=0), lambda a, b: torch.cat([a, b], dim=0),
               [(2, 3), (1, 3)]),
    "mg_stack": (lambda a, b: mg.stack((a, b), dim=2), lambda a, b: torch.stack((a, b), dim=2),
                 [(2, 3), (2, 3)]),
    "mg_chunk": (lambda a: mg.chunk(a, 2, dim=0), lambda a: torch.chunk(a, 2, dim=0),
                 [(5, 2)]),
    "gather": (lambda a: a.gather(1, Tensor(IDX)), lambda a: a.gather(1, torch.tensor(IDX)),
               [(2, 4)]),
    "gather_dim0": (lambda a: a.gather(dim=0, index=IDX[:, :2] % 2),
                    lambda a: a.gather(0, torch.tensor(IDX[:, :2] % 2)), [(2, 4)]),
    "index_select": (lambda a: a.index_select(1, Tensor(SEL)),
                     lambda a: a.index_select(1, torch.tensor(SEL)), [(2, 4)]),
    "masked_fill": (lambda a: a.masked_fill(Tensor(MASK), -1e9).softmax(-1),
                    lambda a: a.masked_fill(torch.tensor(MASK), -1e9).softmax(-1), [(3, 4)]),
    "masked_fill_broadcast": (lambda a: a.masked_fill(Tensor(MASK[0]), 0.5),
                              lambda a: a.masked_fill(torch.tensor(MASK[0]), 0.5), [(3, 4)]),
    "where": (lambda a, b: mg.where(Tensor(MASK), a, b),
              lambda a, b: torch.where(torch.tensor(MASK), a, b), [(3, 4), (4,)]),
    "where_method": (lambda a, b: a.where(Tensor(MASK), b),
                     lambda a, b: a.where(torch.tensor(MASK), b), [(3, 4), (3, 1)]),
    "bmm": (lambda a, b: mg.bmm(a, b), torch.bmm, [(2, 3, 4), (2, 4, 5)]),
    "matmul": (lambda a, b: mg.matmul(a, b), torch.matmul, [(2, 3, 4), (4,)]),
    "eq_ne": (lambda a, b: (a == b, a != b, a == 0.5), lambda a, b: (a == b, a != b, a == 0.5),
              [(3, 1), (1, 4)]),
    "long_int": (lambda a: ((a * 3).long(), (a * 3).int()),
                 lambda a: ((a * 3).long(), (a * 3).int()), [(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_torch(name):
    mg_fn, torch_fn, shapes = CASES[name]
    compare(mg_fn, torch_fn, [randn(*s) for s in shapes])


def test_eq_and_ne_against_arrays_and_integer_tensors():
    a, b = np.array([[1, 2, 3], [4, 2, 0]]), np.array([1, 2, 0])
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_array_equal((mg.tensor(a) == mg.tensor(b)).numpy(), (ta == tb).numpy())
    np.testing.assert_array_equal((mg.tensor(a) != b).numpy(), (ta != tb).numpy())
    np.testing.assert_array_equal((b == mg.tensor(a)).numpy(), (tb == ta).numpy())


@pytest.mark.parametrize("make, like", [
    (lambda m: m.zeros(2, 3), lambda t: t.zeros(2, 3)),
    (lambda m: m.ones((2, 3)), lambda t: t.ones((2, 3))),
    (lambda m: m.zeros(3, dtype=m.int64), lambda t: t.zeros(3, dtype=t.int64)),
    (lambda m: m.full((2,), 7), lambda t: t.full((2,), 7)),
    (lambda m: m.full((2,), 7.5), lambda t: t.full((2,), 7.5)),
    (lambda m: m.full((2,), True), lambda t: t.full((2,), True)),
    (lambda m: m.arange(5), lambda t: t.arange(5)),
    (lambda m: m.arange(1, 4, 0.5), lambda t: t.arange(1, 4, 0.5)),
    (lambda m: m.arange(0.0, 1.0, 0.1), lambda t: t.arange(0.0, 1.0, 0.1)),
    (lambda m: m.eye(3), lambda t: t.eye(3)),
    (lambda m: m.eye(2, 4), lambda t: t.eye(2, 4)),
    (lambda m: m.zeros_like(m.tensor([[1, 2]])), lambda t: t.zeros_like(t.tensor([[1, 2]]))),
    (lambda m: m.ones_like(m.ones(2, dtype=m.float64)),
     lambda t: t.ones_like(t.ones(2, dtype=t.float64))),
    (lambda m: m.tensor([1, 2, 3]), lambda t: t.tensor([1, 2, 3])),
    (lambda m: m.tensor([[1.0, 2.0]]), lambda t: t.tensor([[1.0, 2.0]])),
    (lambda m: m.tensor([True, False]), lambda t: t.tensor([True, False])),
])
def test_constructors_match_torch_values_and_dtypes(make, like):
    m, t = make(mg), like(torch)
    assert str(m.dtype) == str(t.dtype).replace("torch.", "")
    np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda m: m.randn(2, 3), lambda m: m.rand((4,)), lambda m: m.randint(5, (3, 2)),
    lambda m: m.randint(2, 5, (6,)), lambda m: m.randn(2, dtype=m.float64),
    lambda m: m.zeros(2, requires_grad=True)])
def test_random_constructors_match_torch_shapes_and_dtypes(make):
    m, t = make(mg), make(torch)
    assert m.shape == tuple(t.shape) and str(m.dtype) == str(t.dtype).replace("torch.", "")
    assert m.requires_grad == t.requires_grad


def test_std_and_var_of_one_element_are_nan_as_torch():
    x = Tensor(np.array([1.5]), requires_grad=True)
    tx = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
    with pytest.warns(UserWarning, match="degrees of freedom"):
        torch_var = tx.var().item()
    assert np.isnan(x.var().item()) and np.isnan(torch_var)
    np.testing.assert_array_equal(x.var(unbiased=False).data, tx.var(unbiased=False).detach())


def test_pow_gradient_at_a_zero_base_matches_torch():
    a, b = np.array([0.0, 0.0, 2.0]), np.array([2.0, 0.0, 0.5])
    compare(lambda a, b: a ** b, lambda a, b: a ** b, [a, b])
