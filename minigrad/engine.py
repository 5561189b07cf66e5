"""The backward pass: nodes in reverse creation order, gradient accumulation, unbroadcasting,
releasing each node after its backward (saved arrays and links to its inputs, unless
``retain_graph``), thread-safe accumulation into leaves' ``.grad``; and the grad-mode switch
(``no_grad``)."""
from __future__ import annotations

import contextlib
import gc
import heapq
import threading

import numpy as np


class _GradMode(threading.local):
    """Whether ops record the graph, per thread (True in every thread until changed)."""
    enabled = True


_state = _GradMode()

# Adding into a leaf's ``.grad`` is a read-modify-write; two threads running backward on one
# model (a server, a data-parallel loop) must not lose each other's contribution.
_GRAD_LOCK = threading.Lock()


def is_grad_enabled() -> bool:
    """Whether ops record the graph in this thread (``no_grad`` turns it off)."""
    return _state.enabled


def set_grad_enabled(mode: bool) -> None:
    """Turn graph recording on or off for this thread (``no_grad`` does it for a block)."""
    _state.enabled = bool(mode)


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator): ops inside build no graph."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False


class enable_grad(no_grad):
    """Context manager: turn graph building back on inside a ``no_grad`` block."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(True)
        return self


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` back down to ``shape`` (undo numpy broadcasting)."""
    if grad.shape == shape:
        return grad
    # 1. leading axes that broadcasting added
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = np.add.reduce(grad, axis=tuple(range(extra)))
    # 2. axes that were size 1 in the input and stretched in the output
    if 1 in shape:
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if axes:
            grad = np.add.reduce(grad, axis=axes, keepdims=True)
    if grad.shape != shape:
        raise RuntimeError(f"backward: gradient of shape {grad.shape} cannot be reduced to "
                           f"the input's shape {shape}")
    return grad


def backward(root, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Propagate ``grad`` (d loss / d root) to every leaf that requires grad."""
    if root._ctx is None:  # a leaf: its gradient is grad itself
        _accumulate_leaf(root, grad)
        return
    # Python's cyclic garbage collector would walk the whole graph again and again (every
    # Tensor and node is a Python object) while backward only frees it, which reference
    # counting does; it is paused during the walk and resumed after, if it was on. (The switch
    # is process-wide: another thread's allocations meanwhile wait for a later collection.)
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        _backward(root, grad, retain_graph)
    finally:
        if paused:
            gc.enable()


def _backward(root, grad: np.ndarray, retain_graph: bool) -> None:
    """The walk: each node's backward once all gradients for its outputs are in, gradients
    summed per node output and per leaf, each leaf's ``.grad`` updated once at the end.

    Order: every node that used a node's output was created after it (``Context.sequence``), so
    taking the waiting nodes latest-created first (a heap) reaches each node only after all of
    its users: a reverse topological order, found without a separate sort of the graph."""
    root_ctx = root._ctx
    # gradients waiting for each node, by its sequence number: (node, one slot per output)
    pending = {root_ctx.sequence: (root_ctx, [None] * root_ctx.num_outputs)}
    pending[root_ctx.sequence][1][root._out_index] = grad
    waiting = [-root_ctx.sequence]  # a min-heap of negated sequence numbers: latest first
    leaf_grads: dict = {}  # id(leaf) -> [leaf, its gradient so far]
    # ids of the sums this walk allocated and still holds in a slot: only these are added into
    # in place (an array a backward rule returned may also have gone to other inputs)
    owned: set[int] = set()
    while waiting:
        ctx, grads_out = pending.pop(-heapq.heappop(waiting))
        if owned:
            for g in grads_out:
                owned.discard(id(g))
        if ctx._freed:
            raise RuntimeError(
                f"backward through {ctx.op} a second time: its saved arrays were freed by the "
                "first backward(); pass retain_graph=True to the first call")
        if ctx.num_outputs > 1:
            # outputs nobody used get a zero gradient, so multi-output backward rules stay simple
            grads_out = [np.zeros(shape, dtype) if g is None else g
                         for g, (shape, dtype) in zip(grads_out, ctx.output_meta)]
        if ctx.output_hooks:
            for index, hooks in ctx.output_hooks.items():
                for hook in hooks:
                    grads_out[index] = _run_hook(hook, grads_out[index],
                                                 grads_out[index].shape)
        grads_in = ctx.fn.backward(ctx, *grads_out)
        if type(grads_in) is not tuple:
            grads_in = tuple(grads_in) if isinstance(grads_in, list) else (grads_in,)
        parents = ctx.parents
        if len(grads_in) != len(parents):
            raise RuntimeError(f"{ctx.op}.backward returned {len(grads_in)} gradients for "
                               f"{len(parents)} forward arguments")
        if not retain_graph:
            ctx.free()  # drops the saved arrays and the links to the inputs
        for parent, need, g in zip(parents, ctx.needs_input_grad, grads_in):
            if not need or g is None:
                continue
            data = parent.data
            if type(g) is not np.ndarray or g.shape != data.shape or g.dtype != data.dtype:
                g = _input_grad(ctx, parent, g)  # a number, a broadcast shape, another dtype
            parent_ctx = parent._ctx
            if parent_ctx is None:  # keyed by id: a Tensor's == is elementwise
                entry = leaf_grads.get(id(parent))
                if entry is None:
                    leaf_grads[id(parent)] = [parent, g]
                else:
                    _add_to_slot(entry, 1, g, owned)
            else:
                entry = pending.get(parent_ctx.sequence)
                if entry is None:  # the first gradient for this node: it starts waiting
                    slots = [None] * parent_ctx.num_outputs
                    slots[parent._out_index] = g
                    pending[parent_ctx.sequence] = (parent_ctx, slots)
                    heapq.heappush(waiting, -parent_ctx.sequence)
                else:
                    _add_to_slot(entry[1], parent._out_index, g, owned)
    for leaf, g in leaf_grads.values():
        _accumulate_leaf(leaf, g)


def _add_to_slot(slots: list, i: int, g: np.ndarray, owned: set[int]) -> None:
    """slots[i] += g. The first sum is a new array (the engine's own); later contributions are
    added into it in place, so a parameter used at every step of a sequence costs one
    allocation, not one per step."""
    old = slots[i]
    if old is None:
        slots[i] = g
    elif id(old) in owned:
        old += g
    else:
        total = old + g
        owned.add(id(total))
        slots[i] = total


def _input_grad(ctx, parent, g) -> np.ndarray:
    """The gradient a backward rule returned, summed to the input's shape and dtype."""
    data = parent.data
    if type(g) is not np.ndarray:  # a numpy scalar (0-d math), a Python number, a list
        g = np.asarray(g)
    if g.shape == data.shape:  # the usual case: nothing to reduce
        return g if g.dtype == data.dtype else g.astype(data.dtype)
    shape = data.shape
    tail = g.shape[g.ndim - len(shape):] if len(shape) else ()
    if g.ndim < len(shape) or any(n != m and n != 1 for n, m in zip(shape, tail)):
        raise RuntimeError(f"{ctx.op}.backward returned a gradient of shape {g.shape} for an "
                           f"input of shape {shape}")
    return unbroadcast(g, shape).astype(data.dtype, copy=False)


def _accumulate_leaf(leaf, g: np.ndarray) -> None:
    """leaf.grad += g (a new array: one the user already holds is never written), under a lock
    so that concurrent backward calls on shared parameters all count."""
    for hook in leaf._hooks:
        g = _run_hook(hook, g, leaf.data.shape)
    with _GRAD_LOCK:
        if leaf.grad is None:
            # a copy: backward rules may hand the same array to several inputs
            leaf.grad = np.array(g, dtype=leaf.data.dtype, order="C", copy=True)
        else:
            leaf.grad = leaf.grad + g




def _run_hook(hook, g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A gradient hook's result: its replacement (which must keep the tensor's shape, or it
    would broadcast into the gradient), or ``g`` when it returns None."""
    replaced = hook(g)
    if replaced is None:
        return g
    replaced = np.asarray(replaced)
    if replaced.shape != shape:
        raise RuntimeError(f"gradient hook {getattr(hook, '__name__', hook)!r} returned a "
                           f"gradient of shape {replaced.shape} for a tensor of shape {shape}")
    return replaced
