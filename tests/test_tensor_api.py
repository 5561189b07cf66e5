"""The Tensor's PyTorch-style API beyond the math: comparisons (issue 11, item 2), truth
values, hashing, conversions, size/numel, the dim=/axis= keyword aliases (issue 11, item 9),
constructors, multinomial sampling, from_numpy, and a docstring on every public name."""
from __future__ import annotations

import inspect
import types

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import minigrad.nn.functional as NF
from minigrad import Tensor


# ---- issue 11, item 2: == and != are elementwise; hashing; truth values; where ------------

def test_eq_and_ne_are_elementwise_boolean_tensors():
    a, b = mg.tensor([[1.0, 2.0, 0.0]]), mg.tensor([[1.0, 5.0, 0.0]])
    for out, expect in [(a == b, [[True, False, True]]), (a != b, [[False, True, False]]),
                        (a == 0, [[False, False, True]]), (a != 0.0, [[True, True, False]]),
                        (0 == a, [[False, False, True]]),
                        (np.array([1.0, 0, 0]) != a, [[False, True, False]])]:
        assert isinstance(out, Tensor) and out.dtype == np.bool_
        np.testing.assert_array_equal(out.numpy(), expect)


def test_where_with_a_not_equal_mask_masks_elementwise():
    src = mg.tensor([[3, 0, 5, 0]])
    scores = mg.tensor([[0.1, 0.2, 0.3, 0.4]], requires_grad=True)
    out = F.where(src != 0, scores, -1e9)
    np.testing.assert_array_equal(out.numpy(), np.array([[0.1, -1e9, 0.3, -1e9]], np.float32))
    out.sum().backward()
    np.testing.assert_array_equal(scores.grad, [[1, 0, 1, 0]])


@pytest.mark.parametrize("cond", [True, False, np.True_, 1, [True, False]])
def test_where_refuses_a_condition_that_is_not_an_array(cond):
    x = mg.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="where: condition must be a boolean Tensor or ndarray"):
        F.where(cond, x, 0.0)
    with pytest.raises(TypeError, match="where: condition must be a boolean Tensor or ndarray"):
        mg.where(cond, x, 0.0)
    with pytest.raises(TypeError, match="where: condition must be a boolean Tensor or ndarray"):
        x.where(cond, 0.0)


def test_tensors_stay_hashable_by_identity():
    a, b = mg.tensor([1.0, 2.0]), mg.tensor([1.0, 2.0])
    assert hash(a) != hash(b) and hash(a) == hash(a)
    seen = {a, b, a}
    assert len(seen) == 2 and a in seen and b in seen
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    assert mg.tensor([3.0]) not in seen


def test_truth_value_of_one_element_and_of_many():
    assert bool(mg.tensor([2.0])) and not bool(mg.tensor(0.0)) and bool(mg.tensor([[1]]))
    if mg.tensor(1.0) == mg.tensor(1.0):
        pass
    else:
        pytest.fail("a one-element comparison must be usable in an if")
    x = mg.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="truth value of a tensor with more than one element "
                                         r"is ambiguous.*Use a\.any\(\) or a\.all\(\)"):
        if x == x:
            pass
    with pytest.raises(ValueError, match="truth value of an empty tensor is ambiguous"):
        bool(mg.zeros(0))
    assert (x == x).all() and (x != x).any().item() is False


# ---- conversions ----------------------------------------------------------------------

def test_numpy_functions_read_the_data():
    x = mg.tensor([[0.1, 0.9, 0.3], [0.7, 0.2, 0.1]])
    arr = np.asarray(x)
    assert arr is x.data
    np.testing.assert_array_equal(np.argmax(x, axis=-1), [1, 0])
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.array(x).base is None or not np.shares_memory(np.array(x), x.data)


def test_python_number_conversions():
    assert float(mg.tensor([2.5])) == 2.5 and int(mg.tensor([[7]])) == 7
    assert int(mg.tensor(3.9)) == 3
    assert [10, 20, 30][mg.tensor(1)] == 20 and range(5)[mg.tensor([2])] == 2
    with pytest.raises(TypeError, match="only one-element integer tensors can be used as an "
                                        "index"):
        [1, 2][mg.tensor(1.0)]
    for conv in (float, int):
        with pytest.raises(ValueError, match=r"only one-element tensors convert to a Python "
                                             r"number, this one has shape \(2,\)"):
            conv(mg.tensor([1.0, 2.0]))
    assert mg.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert mg.tensor(1.5).tolist() == 1.5 and mg.tensor(2).item() == 2


def test_dtype_conversions():
    x = mg.tensor([1.7, -2.2], requires_grad=True)
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.to(mg.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.to(dtype=np.float32) is x and x.to("cpu") is x
    assert x.to(mg.zeros(1, dtype=mg.float64)).dtype == np.float64
    with pytest.raises(ValueError, match="minigrad runs on the CPU only"):
        x.to("cuda")
    y = x.to(mg.float64)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-6)
    assert x.grad.dtype == np.float32


def test_size_is_pytorchs_method_and_numel_counts_elements():
    x = mg.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) == x.shape
    assert x.size(1) == 3 and x.size(dim=-1) == 4 and x.size(axis=0) == 2
    assert x.numel() == 24 and x.dim() == 3 == x.ndim
    with pytest.raises(IndexError, match=r"size\(\): dim 3 is out of range for shape"):
        x.size(3)


# ---- dim= / axis=, keepdim= / keepdims= -----------------------------------------------

X = np.arange(24.0).reshape(2, 3, 4) % 7

ALIASED = {
    "sum": lambda x, **k: x.sum(**k), "mean": lambda x, **k: x.mean(**k),
    "amax": lambda x, **k: x.amax(**k), "amin": lambda x, **k: x.amin(**k),
    "argmax": lambda x, **k: x.argmax(**k), "argmin": lambda x, **k: x.argmin(**k),
    "var": lambda x, **k: x.var(**k), "std": lambda x, **k: x.std(**k),
    "norm": lambda x, **k: x.norm(**k), "any": lambda x, **k: (x > 3).any(**k),
    "all": lambda x, **k: (x > 0).all(**k),
    "softmax": lambda x, **k: x.softmax(**k), "log_softmax": lambda x, **k: x.log_softmax(**k),
    "F.softmax": lambda x, **k: F.softmax(x, **k),
    "F.log_softmax": lambda x, **k: NF.log_softmax(x, **k),
    "cumsum": lambda x, **k: x.cumsum(**k), "unsqueeze": lambda x, **k: x.unsqueeze(**k),
    "squeeze": lambda x, **k: x[:, :1].squeeze(**k),
    "topk": lambda x, **k: x.topk(2, **k)[0],
    "split": lambda x, **k: x.split(1, **k)[0], "chunk": lambda x, **k: x.chunk(2, **k)[0],
    "mg.split": lambda x, **k: mg.split(x, 1, **k)[-1],
    "mg.chunk": lambda x, **k: mg.chunk(x, 2, **k)[-1],
    "cat": lambda x, **k: mg.cat([x, x], **k), "concat": lambda x, **k: mg.concat([x, x], **k),
    "stack": lambda x, **k: mg.stack([x, x], **k),
    "gather": lambda x, **k: x.gather(index=np.zeros((2, 3, 4), np.int64), **k),
    "index_select": lambda x, **k: x.index_select(index=np.array([1, 0]), **k),
}
KEEPS = {"sum", "mean", "amax", "amin", "argmax", "argmin", "var", "std", "norm", "any", "all"}


@pytest.mark.parametrize("name", sorted(ALIASED))
def test_dim_and_axis_are_the_same_argument(name):
    fn, x = ALIASED[name], Tensor(X)
    a, b = fn(x, dim=1), fn(x, axis=1)
    np.testing.assert_array_equal(a.data, b.data)
    other = fn(x, dim=-1)  # the argument is used: another axis gives another result
    assert other.shape != a.shape or not np.array_equal(other.data, a.data)
    if name in KEEPS:
        c, d = fn(x, dim=1, keepdim=True), fn(x, axis=1, keepdims=True)
        e = fn(x, dim=1, keepdims=True)
        assert c.shape == d.shape == e.shape == (2, 1, 4)
        np.testing.assert_array_equal(c.data, d.data)
    with pytest.raises(TypeError, match=r"dim= and axis= are the same argument|axis= and dim= "
                                        r"are the same argument"):
        fn(x, dim=1, axis=1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'dims'; accepted "
                                        r"keywords: .*(axis= \(or dim=\)|dim=)"):
        fn(x, dims=1)


def test_max_min_with_dim_give_values_and_indices_and_with_axis_the_values():
    x = Tensor(X)
    values, indices = x.max(dim=1)
    assert isinstance(x.max(1), mg.ValuesIndices) and x.max(1).indices.dtype == np.int64
    np.testing.assert_array_equal(values.data, X.max(axis=1))
    np.testing.assert_array_equal(indices.data, X.argmax(axis=1))
    np.testing.assert_array_equal(x.max(axis=1).data, X.max(axis=1))
    np.testing.assert_array_equal(x.min(axis=1, keepdims=True).data, X.min(1, keepdims=True))
    assert x.min(dim=2, keepdim=True).values.shape == (2, 3, 1)
    assert x.max(dim=2, keepdims=True).indices.shape == (2, 3, 1)
    with pytest.raises(TypeError, match="dim= and axis= are the same argument"):
        x.max(dim=1, axis=1)
    with pytest.raises(TypeError, match="keepdim= and keepdims= are the same argument"):
        x.min(dim=1, keepdim=True, keepdims=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'dims'"):
        x.max(dims=1)


def test_var_keyword_spellings():
    x = Tensor(X)
    np.testing.assert_allclose(x.var(axis=2, ddof=0).data, X.var(axis=2), rtol=1e-6)
    np.testing.assert_allclose(x.var(2, unbiased=False).data, X.var(axis=2), rtol=1e-6)
    np.testing.assert_allclose(x.std(dim=2).data, X.std(axis=2, ddof=1), rtol=1e-6)
    with pytest.raises(TypeError, match="correction= and ddof= are the same argument|ddof= "
                                        "and correction= are the same argument"):
        x.var(correction=1, ddof=1)
    with pytest.raises(TypeError, match="pass unbiased= or correction="):
        x.var(unbiased=True, correction=1)


def test_clear_errors_of_the_new_ops():
    x = mg.ones(2, 3)
    cases = [
        (lambda: x.norm("nuc"), ValueError, "norm: p must be a positive number, inf or 'fro'"),
        (lambda: x.clamp(), ValueError, r"clamp: give min, max or both \(input shape \(2, 3\)"),
        (lambda: x.gather(1, np.array([[0, 3]])), ValueError,
         r"gather: index 3 is out of range for dim 1 of size 3"),
        (lambda: x.gather(0, np.zeros((2, 4), np.int64)), ValueError,
         r"gather: index of shape \(2, 4\) must have the input's rank and be no larger"),
        (lambda: x.index_select(0, np.array([0.0])), ValueError,
         "index_select: index must hold integers"),
        (lambda: x.masked_fill(np.array([1, 0, 1]), 0.0), ValueError,
         "masked_fill: mask must be boolean"),
        (lambda: x.masked_fill(np.ones(2, bool), 0.0), ValueError,
         r"masked_fill: mask of shape \(2,\) does not broadcast to the input's shape \(2, 3\)"),
        (lambda: x.expand(3, 3), ValueError, r"expand: cannot expand shape \(2, 3\) to \(3, 3\)"),
        (lambda: x.repeat(2), ValueError, r"repeat: needs at least 2 non-negative repeat counts"),
        (lambda: x.topk(4), ValueError, r"topk: k=4 must be an integer in \[0, 3\]"),
        (lambda: x.max(dim=2), ValueError, r"max: dim 2 is out of range for shape \(2, 3\)"),
        (lambda: x.argmin(dim=-3), ValueError, r"argmin: dim -3 is out of range"),
        (lambda: x.unsqueeze(3), IndexError, r"unsqueeze: dim 3 is out of range"),
        (lambda: x.chunk(0), ValueError, "chunk: chunks must be a positive integer"),
        (lambda: mg.bmm(x, x), ValueError, r"bmm: needs \(B, N, M\) and \(B, M, P\) tensors"),
        (lambda: x.flatten(1, 0), ValueError, "flatten: start_dim 1 comes after end_dim 0"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()


# ---- constructors -----------------------------------------------------------------------

def test_constructor_dtypes_and_requires_grad():
    assert mg.zeros(2, 3).dtype == np.float32 and mg.ones((4,)).shape == (4,)
    assert mg.tensor([1, 2]).dtype == np.int64 and mg.tensor([1.0]).dtype == np.float32
    assert mg.arange(3).dtype == np.int64 and mg.arange(0, 1, 0.25).dtype == np.float32
    assert mg.full((2, 2), 3).dtype == np.int64 and mg.full(2, 0.5).shape == (2,)
    assert mg.randint(0, 10, (50,)).numpy().min() >= 0 and mg.randint(3, (50,)).max() < 3
    assert mg.eye(3, dtype=mg.float64).dtype == np.float64
    z = mg.zeros_like(mg.ones(2, 2, dtype=mg.int64))
    assert z.dtype == np.int64 and z.shape == (2, 2)
    w = mg.randn(3, 2, requires_grad=True)
    assert w.requires_grad and w.is_leaf and w.dtype == np.float32
    with pytest.raises(TypeError, match="only float32/float64 tensors can require grad"):
        mg.zeros(2, dtype=mg.int64, requires_grad=True)
    with pytest.raises(ValueError, match="randn: dtype must be float32 or float64"):
        mg.randn(2, dtype=mg.int64)
    with pytest.raises(TypeError, match=r"randint: call randint\(high, size\)"):
        mg.randint(5)


def test_random_constructors_follow_manual_seed():
    mg.manual_seed(3)
    a = (mg.randn(4), mg.rand(4), mg.randint(0, 100, (4,)), mg.multinomial(mg.ones(9), 3))
    mg.manual_seed(3)
    b = (mg.randn(4), mg.rand(4), mg.randint(0, 100, (4,)), mg.multinomial(mg.ones(9), 3))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert not np.array_equal(mg.randn(4).numpy(), a[0].numpy())
    assert 0 <= a[1].numpy().min() and a[1].numpy().max() < 1


def test_from_numpy_shares_memory_both_ways():
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    t = mg.from_numpy(arr)
    assert t.dtype == np.int32 and np.shares_memory(t.numpy(), arr)
    arr[0, 0] = 100
    assert t[0, 0].item() == 100
    t.numpy()[1, 2] = -1
    assert arr[1, 2] == -1
    f = mg.from_numpy(np.zeros(3))
    assert f.dtype == np.float64
    with pytest.raises(ValueError, match="is not C-contiguous, so it cannot be shared"):
        mg.from_numpy(np.zeros((3, 4))[:, ::2])
    with pytest.raises(TypeError, match="from_numpy: expected a numpy ndarray"):
        mg.from_numpy([1, 2])


def test_multinomial_samples_follow_the_probabilities():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    draws = mg.multinomial(mg.tensor(p), 20000, replacement=True, generator=0).numpy()
    assert draws.dtype == np.int64 and draws.shape == (20000,)
    freq = np.bincount(draws, minlength=4) / draws.size
    assert freq[1] == 0.0
    # 4 standard errors of a binomial proportion at n = 20000
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(0.25 / 20000))
    # unnormalised weights, one row per batch, without replacement: distinct indices
    w = mg.tensor([[1.0, 2.0, 3.0, 0.0], [5.0, 0.0, 1.0, 1.0]])
    rows = mg.multinomial(w, 3).numpy()
    assert rows.shape == (2, 3)
    for row, weights in zip(rows, w.numpy()):
        assert len(set(row)) == 3 and np.all(weights[row] > 0)


@pytest.mark.parametrize("probs, n, kw, match", [
    ([0.5, -0.1], 1, {}, "probabilities must be finite and non-negative"),
    ([[0.0, 0.0]], 1, {}, "row 0 of the probabilities .* sums to zero"),
    ([0.5, 0.0, 0.5], 3, {}, "cannot draw 3 samples without replacement from a row with 2"),
    ([0.5, 0.5], 0, {}, "num_samples must be a positive integer"),
    (np.ones((2, 2, 2)), 1, {}, r"probabilities must be \(C,\) or \(B, C\)"),
])
def test_multinomial_errors(probs, n, kw, match):
    with pytest.raises(ValueError, match=f"multinomial: {match}"):
        mg.multinomial(mg.tensor(probs), n, **kw)


def test_module_level_forms_of_methods():
    x = mg.tensor([[0.5, -2.0, 1.0], [3.0, 0.0, -1.0]])
    np.testing.assert_array_equal(mg.argmax(x, dim=1).numpy(), [2, 0])
    np.testing.assert_array_equal(mg.sum(x, 0).numpy(), x.numpy().sum(0))
    np.testing.assert_array_equal(mg.max(x, dim=1).indices.numpy(), [2, 0])
    np.testing.assert_array_equal(mg.tanh([0.0]).numpy(), [0.0])
    assert mg.unsqueeze(x, 0).shape == (1, 2, 3) and mg.abs(x).min().item() == 0.0
    assert "argmax" in mg.__all__ and "max" not in mg.__all__ and "pow" not in mg.__all__
    ns: dict = {}
    exec("from minigrad import *", ns)
    assert "sum" not in ns and "tanh" in ns and "where" in ns


# ---- docstrings -------------------------------------------------------------------------

def _public(obj):
    names = set(getattr(obj, "__all__", ())) | {n for n in dir(obj) if not n.startswith("_")}
    return [(n, getattr(obj, n)) for n in sorted(names)]


@pytest.mark.parametrize("owner", ["minigrad", "minigrad.Tensor", "minigrad.nn.functional"])
def test_every_public_name_has_a_docstring(owner):
    obj = {"minigrad": mg, "minigrad.Tensor": Tensor, "minigrad.nn.functional": NF}[owner]
    missing = []
    for name, value in _public(obj):
        if isinstance(value, (int, float, str, tuple)):
            continue
        doc = value.__doc__
        if owner == "minigrad.Tensor":
            raw = inspect.getattr_static(Tensor, name)
            # a slot's docstring is the value in __slots__, which help() shows via getdoc
            doc = inspect.getdoc(raw) if isinstance(raw, types.MemberDescriptorType) \
                else raw.__doc__
        if not doc or not doc.strip() or doc.lstrip().startswith("#"):
            missing.append(name)
    assert not missing, f"{owner}: no docstring on {missing}"
    assert F.softmax.__doc__ and "dim" in F.softmax.__doc__
