"""Context and Function: the contract every primitive (and every user-defined op) follows.

A primitive is a ``Function`` subclass with two static methods::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):            # ndarrays in (non-tensor args pass through as is)
            ctx.save_for_backward(a, b)
            return a * b                   # an ndarray, or a tuple of ndarrays
        @staticmethod
        def backward(ctx, grad_out):       # one grad per output
            a, b = ctx.saved_tensors
            return grad_out * b, grad_out * a   # one grad per forward argument (None: no grad)

``backward`` returns one gradient per *positional* forward argument (None for non-tensors);
keyword arguments (axis=, shape=, ...) are options and get no gradient.

``Mul.apply(x, y)`` unwraps the Tensors, runs ``forward`` on their arrays and, when grad mode is
on and some input requires grad, links the output Tensor(s) to a ``Context`` node of the graph.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from minigrad import engine


_NEEDS: dict[tuple, tuple] = {}
_next_sequence = itertools.count().__next__  # atomic under the GIL: unique across threads


class Context:
    """One node of the graph: the op, its inputs, and what forward saved for backward.

    ``output_meta`` holds (shape, dtype) per output of a multi-output node (backward gives an
    output nobody used a zero gradient); a one-output node needs none."""

    __slots__ = ("fn", "parents", "needs_input_grad", "sequence", "num_outputs", "output_meta",
                 "output_hooks", "_saved", "_freed", "__dict__")

    def __init__(self, fn: type, parents: tuple, needs_input_grad: tuple[bool, ...]):
        self.fn = fn
        self.parents = parents                  # Tensor or None per forward argument
        self.needs_input_grad = needs_input_grad
        # creation order: the nodes that made this node's inputs were created before it, so
        # backward can take nodes latest first (engine._backward)
        self.sequence = _next_sequence()
        self.num_outputs = 1
        self.output_meta: tuple = ()
        self.output_hooks: dict[int, list] | None = None  # {output index: hooks}, when any
        self._saved: tuple = ()
        self._freed = False

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays (or anything) for backward; they are dropped after backward ends."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        """What forward saved, in order (a clear error once a backward has freed it)."""
        if self._freed:
            raise RuntimeError(
                f"{self.fn.__name__}.backward: the saved arrays of this graph were freed by an "
                "earlier backward(); call backward(retain_graph=True) the first time to "
                "backward through it again")
        return self._saved

    def free(self) -> None:
        """Release the node after its backward: drop what was saved (and any attributes
        forward set on ctx), the links to its inputs and its hooks, so intermediate tensors
        the user no longer holds are freed while the output is still alive."""
        self._saved = ()
        self.__dict__.clear()
        self.parents = ()
        self.output_hooks = None
        self._freed = True

    @property
    def op(self) -> str:
        """The op's label (``op_name``, else the Function's class name)."""
        return getattr(self.fn, "op_name", self.fn.__name__)

    def __repr__(self) -> str:
        shapes = ", ".join("const" if p is None else str(p.shape) for p in self.parents)
        return f"<{self.op} node ({shapes})>"


class Function:
    """Base class of every primitive. Subclasses define ``forward`` and ``backward``."""

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grad_outputs: np.ndarray):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any):
        """Run ``forward`` on the arrays of the Tensor arguments (others pass as they are) and
        wrap the result in Tensor(s) linked to a new graph node when grad mode is on and some
        input requires grad."""
        tensor_cls = _tensor.Tensor
        arrays, parents, needs = [], [], []
        requires = False
        for a in args:
            if isinstance(a, tensor_cls):
                arrays.append(a.data)
                parents.append(a)
                needs.append(a.requires_grad)
                requires = requires or a.requires_grad
            else:
                arrays.append(a)
                parents.append(None)
                needs.append(False)
        track = requires and engine.is_grad_enabled()
        # nodes of up to 4 inputs share the few distinct needs tuples ((True, True), (True,
        # False), ...): one object fewer per node for Python's garbage collector to walk
        needs = tuple(needs)
        if len(needs) <= 4:
            needs = _NEEDS.setdefault(needs, needs)
        ctx = Context(cls, tuple(parents), needs)
        result = cls.forward(ctx, *arrays, **kwargs)
        if type(result) is np.ndarray:  # the usual case: one output
            if track and result.dtype.kind == "f":
                return tensor_cls._from_op(result, ctx, 0)
            return tensor_cls._from_op(result, None, 0)
        if isinstance(result, (tuple, list)):
            tensors, meta = [], []
            for i, out in enumerate(result):
                if type(out) is not np.ndarray:
                    # numpy scalars and Python numbers become 0-d arrays: every Tensor holds
                    # an ndarray
                    out = np.asarray(out)
                # integer / boolean outputs (argmax, masks, int casts) carry no gradient
                tensors.append(tensor_cls._from_op(
                    out, ctx if track and out.dtype.kind == "f" else None, i))
                meta.append((out.shape, out.dtype))
            if track:
                ctx.num_outputs = len(tensors)
                ctx.output_meta = tuple(meta)
            return tuple(tensors)
        out = np.asarray(result)
        return tensor_cls._from_op(out, ctx if track and out.dtype.kind == "f" else None, 0)


# Imported last, and as a module: tensor.py and the ops import each other through this file, so
# whichever of them Python loads first, Function exists before tensor.py runs, and
# ``_tensor.Tensor`` is read when apply() is called (by then every module is loaded).
from minigrad import tensor as _tensor  # noqa: E402
