"""Engine behaviour: fan-out accumulation, broadcasting reduction, no_grad, detach,
retain_graph and freeing of saved arrays, a 100,000-node chain, hooks and retain_grad on
non-leaf tensors, and every error case with its message."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad import Function, Tensor


def leaf(arr) -> Tensor:
    return Tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


def test_fan_out_accumulates_and_repeated_backward_adds_to_grad():
    x = leaf([1.0, -2.0, 3.0])
    y = x * x + x * 3.0 + x            # x read by four edges
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 4.0)
    (x * 2.0).sum().backward()         # leaf grads accumulate across calls (as torch)
    np.testing.assert_allclose(x.grad, 2 * x.data + 6.0)


def test_same_tensor_on_both_sides_of_one_op():
    x = leaf([0.5, -1.5])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_broadcasting_gradient_is_summed_back_to_each_input_shape():
    a = leaf(np.arange(6.0).reshape(2, 3))
    b = leaf([[10.0, 20.0, 30.0]])      # (1, 3)
    c = leaf(2.0)                       # ()
    d = leaf(np.ones((4, 1, 1)))        # adds a new leading axis of 4
    (a * b + c + d).sum().backward()
    assert b.grad.shape == (1, 3) and c.grad.shape == () and d.grad.shape == (4, 1, 1)
    np.testing.assert_allclose(a.grad, np.broadcast_to(b.data, (2, 3)) * 4)
    np.testing.assert_allclose(b.grad, a.data.sum(axis=0, keepdims=True) * 4)
    assert c.grad == 4 * 6 and np.all(d.grad == 6)


def test_no_grad_builds_no_graph_and_restores_mode():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        y = x * 2.0
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad

    @mg.no_grad()
    def f(t):
        return t.tanh()
    assert f(x).grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    z = y.detach() * x                 # only the direct path to x remains
    assert y.detach().grad_fn is None and not y.detach().requires_grad
    z.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)


class SaveFresh(Function):
    """Saves an array that only this node references, to observe freeing through a weakref."""

    @staticmethod
    def forward(ctx, x):
        fresh = np.cos(x)
        ctx.save_for_backward(fresh)
        ctx.note = np.ones(3)          # attributes set on ctx are dropped too
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (cos_x,) = ctx.saved_tensors
        return grad * cos_x


def test_saved_arrays_are_freed_after_backward():
    x = leaf([0.1, 0.2, 0.3])
    y = SaveFresh.apply(x)
    ref = weakref.ref(y.grad_fn.saved_tensors[0])
    note = weakref.ref(y.grad_fn.note)
    y.sum().backward()
    gc.collect()
    assert ref() is None and note() is None
    np.testing.assert_allclose(x.grad, np.cos(x.data))


def test_retain_graph_keeps_saved_arrays_and_second_backward_without_it_fails():
    x = leaf([0.1, 0.2, 0.3])
    y = SaveFresh.apply(x).sum()
    ref = weakref.ref(y.grad_fn.parents[0].grad_fn.saved_tensors[0])
    y.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None
    y.backward()                                   # allowed: the graph was retained
    np.testing.assert_allclose(x.grad, 2 * np.cos(x.data))
    with pytest.raises(RuntimeError, match="a second time.*retain_graph=True"):
        y.backward()


def test_backward_releases_intermediates_the_user_dropped_while_the_loss_lives():
    # as PyTorch: after backward (no retain_graph) the graph drops its links to its inputs
    x = leaf(np.linspace(-1, 1, 5))
    h = (x * 2.0).tanh()
    refs = [weakref.ref(h), weakref.ref(h.data)]
    loss = (h * h).sum()
    del h
    gc.collect()
    assert all(r() is not None for r in refs)        # the graph keeps them until backward
    loss.backward()
    gc.collect()
    assert all(r() is None for r in refs), "an intermediate outlived backward"
    assert loss.grad_fn is not None                 # the loss itself is still alive
    np.testing.assert_allclose(x.grad, 4 * np.tanh(2 * x.data) * (1 - np.tanh(2 * x.data) ** 2))
    with pytest.raises(RuntimeError, match="a second time.*retain_graph=True"):
        loss.backward()


def test_retain_graph_keeps_intermediates_and_a_later_backward_still_works():
    x = leaf([0.5, -0.25])
    h = x.exp()
    ref = weakref.ref(h)
    loss = (h * 3.0).sum()
    del h
    loss.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None
    loss.backward()
    np.testing.assert_allclose(x.grad, 6 * np.exp(x.data))
    gc.collect()
    assert ref() is None


def test_backward_through_a_released_branch_from_another_root_is_a_clear_error():
    x = leaf([0.3, 0.7])
    h = x.sigmoid()
    a, b = (h * 2.0).sum(), (h * 3.0).sum()
    a.backward()                                     # frees h's node, shared with b
    with pytest.raises(RuntimeError, match="a second time.*retain_graph=True"):
        b.backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_backward_twice_with_retain_graph_gives_the_same_gradient(dtype):
    # the loss writes its logits gradient over its saved probabilities only on the last use
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4, 5)).astype(dtype), requires_grad=True)
    loss = mg.functional.cross_entropy(x * 1.0, rng.integers(0, 5, (3, 4)))
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad, 3 * first, rtol=1e-6)


def test_saved_tensors_of_a_freed_node_raise_a_clear_error():
    x = leaf([0.1])
    y = SaveFresh.apply(x)
    ctx = y.grad_fn
    y.sum().backward()
    with pytest.raises(RuntimeError, match="SaveFresh.backward: the saved arrays .* freed"):
        ctx.saved_tensors


def test_hundred_thousand_node_chain():
    x = leaf([1.0])
    y = x
    for _ in range(100_000):
        y = y + 1e-6
    (y * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0])
    np.testing.assert_allclose(y.data, [1.1], rtol=1e-9)


class _Logged(Function):
    """Identity that records when its backward runs (to check the engine's order)."""
    log: list = []

    @staticmethod
    def forward(ctx, a, name):
        ctx.name = name
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        _Logged.log.append((ctx.name, grad.copy()))
        return grad, None


def test_each_node_runs_once_after_all_of_its_users_across_interleaved_branches():
    # the engine takes nodes latest-created first: a node made early and used again much
    # later (a, used by b and by the last node) must wait for every use's gradient
    _Logged.log = []
    x = leaf([1.0, 2.0])
    a = _Logged.apply(x * 2.0, "a")
    b = _Logged.apply(a * 3.0, "b")
    other = _Logged.apply(x + 1.0, "other")         # a branch created in between
    c = _Logged.apply(b * other, "c")
    d = _Logged.apply(c + a * a, "d")               # a used again, last
    d.sum().backward()
    names = [name for name, _ in _Logged.log]
    assert sorted(names) == ["a", "b", "c", "d", "other"]      # each once
    assert names.index("a") > max(names.index("b"), names.index("d"))
    assert names.index("b") > names.index("c") and names.index("other") > names.index("c")
    # the gradient a's backward saw is the sum over both uses: d/da (3a (x+1) + a^2)
    xv = x.data
    got = dict(_Logged.log)["a"]
    np.testing.assert_allclose(got, 3 * (xv + 1) + 2 * (2 * xv))
    # and x's gradient matches the closed form of d = 6x (x + 1) + 4x^2
    np.testing.assert_allclose(x.grad, 12 * xv + 6 + 8 * xv)


def test_graphs_built_in_two_threads_backward_correctly():
    import threading
    results = {}

    def build(k):
        x = leaf(np.arange(3.0) + k)
        y = x
        for _ in range(200):
            y = y * 1.001 + x * 0.001
        y.sum().backward()
        results[k] = x.grad.copy()

    threads = [threading.Thread(target=build, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # y_n = 1.001 y_{n-1} + 0.001 x  =>  dy_n/dx = 1.001 dy_{n-1}/dx + 0.001, dy_0/dx = 1
    want = 1.0
    for _ in range(200):
        want = 1.001 * want + 0.001
    for k in range(2):
        np.testing.assert_allclose(results[k], np.full(3, want))


def test_backward_on_non_scalar_needs_grad():
    x = leaf(np.ones((2, 2)))
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"only for a scalar output.*shape \(2, 2\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\).*shape \(2, 2\)"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 2), 0.5))
    np.testing.assert_allclose(x.grad, np.ones((2, 2)))


def test_backward_without_requires_grad_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0, 2.0]).sum().backward()
    with pytest.raises(TypeError, match="only float32/float64"):
        Tensor([1, 2], requires_grad=True)


def test_hooks_and_retain_grad_on_non_leaf_tensors():
    x = leaf([1.0, 2.0, 3.0])
    h1 = x * 2.0
    h2 = h1.tanh()
    seen = []
    remove = h1.register_hook(lambda g: seen.append(g.copy()))
    h2.retain_grad()
    (h2 * h2).sum().backward(retain_graph=True)
    t = np.tanh(2 * x.data)
    np.testing.assert_allclose(h2.grad, 2 * t)
    np.testing.assert_allclose(seen[0], 2 * t * (1 - t * t))
    assert h1.grad is None                        # not retained
    remove()
    (h2 * h2).sum().backward()
    assert len(seen) == 1


def test_hook_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    h.register_hook(lambda g: g * 0.0 + 1.0)      # returns a replacement
    x.register_hook(lambda g: g * 2.0)
    (h * h).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])


def test_multi_output_with_an_unused_output():
    x = leaf(np.arange(6.0))
    a, b = mg.split(x, [2, 4])
    (b * b).sum().backward()
    np.testing.assert_allclose(x.grad, np.r_[0.0, 0.0, 2 * x.data[2:]])


class TwoGradsForOneInput(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, grad):
        return np.ones(7)


def test_bad_backward_rules_are_named():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="TwoGradsForOneInput.backward returned 2 gradients "
                                           "for 1 forward arguments"):
        TwoGradsForOneInput.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward returned a gradient of shape "
                                           r"\(7,\) for an input of shape \(2,\)"):
        WrongShape.apply(x).sum().backward()


def test_integer_outputs_carry_no_graph_and_float32_grads_stay_float32():
    x = Tensor(np.array([1.5, 2.5], dtype=np.float32), requires_grad=True)
    assert x.astype(np.int64).grad_fn is None
    (x.double() * 2.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 2.0])


def test_torch_style_transpose_of_two_axes():
    x = leaf(np.arange(6.0).reshape(2, 3))
    assert x.transpose(0, 1).shape == (3, 2)
    y = leaf(np.zeros((2, 3, 4)))
    assert y.transpose(0, 2).shape == (4, 3, 2) and y.transpose(-1, 0, 1).shape == (4, 2, 3)


@pytest.mark.parametrize("where", ["leaf", "non-leaf"])
def test_a_hook_returning_a_gradient_of_another_shape_is_refused(where):
    x = leaf(np.ones((2, 3)))
    h = x * 2.0
    target = x if where == "leaf" else h

    def wrong(g):
        return np.ones(3)  # would broadcast into a (2, 3) gradient

    target.register_hook(wrong)
    with pytest.raises(RuntimeError, match=r"hook 'wrong' returned a gradient of shape \(3,\) "
                                           r"for a tensor of shape \(2, 3\)"):
        h.sum().backward()


def test_a_detached_output_made_a_leaf_takes_hooks():
    x = leaf([1.0, 2.0])
    y = (x * 3.0).detach().requires_grad_()
    seen = []
    y.register_hook(lambda g: seen.append(g.copy()))
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * y.data)
    np.testing.assert_allclose(y.grad, 2 * y.data)
