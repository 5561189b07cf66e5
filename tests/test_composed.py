"""Random composed expressions: hypothesis draws a small graph of primitives whose nodes are
reused (shared subexpressions, fan-out, broadcasting) and the whole graph passes gradcheck."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import Tensor
from strategies import floats

SHAPE = (2, 3)


def _full(x):
    """Broadcast the (3,) input to (2, 3) (a broadcasting add) before an op reads it."""
    return x + np.zeros(SHAPE)

# every op maps (2, 3)-broadcastable tensors to a (2, 3) tensor and is smooth everywhere
UNARY = {
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
    "neg": lambda x: -x,
    "square": lambda x: x ** 2 * 0.5,
    "log1p_sq": lambda x: (x * x + 1.0).log(),
    "exp_tanh": lambda x: x.tanh().exp(),
    "softmax": lambda x: F.softmax(x, -1),
    "log_softmax": lambda x: x.log_softmax(0) * 0.5,
    "col_mean": lambda x: x.mean(axis=0, keepdims=True) + x,
    "row_sum": lambda x: x - x.sum(axis=1, keepdims=True) * 0.3,
    "transpose_pair": lambda x: x.T.T,
    "reshape": lambda x: x.reshape(3, 2).reshape(2, 3),
    "slice_cat": lambda x: mg.concat([x[:, 1:], x[:, :1]], axis=1),
    "stack_sum": lambda x: mg.stack([x, x.tanh()], axis=0).sum(axis=0),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "matmul": lambda a, b: (a @ b.T) @ a * 0.3,
    "where": lambda a, b: F.where(np.array([[True, False, True], [False, True, True]]), a, b),
}


@st.composite
def programs(draw):
    """A list of steps; each names an op and the indices of earlier nodes it reads."""
    n_steps = draw(st.integers(2, 7))
    steps = []
    for k in range(n_steps):
        available = 3 + k  # three inputs, then one node per earlier step
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(UNARY)))
            steps.append((name, (draw(st.integers(0, available - 1)),)))
        else:
            name = draw(st.sampled_from(sorted(BINARY)))
            steps.append((name, (draw(st.integers(0, available - 1)),
                                 draw(st.integers(0, available - 1)))))
    n_out = draw(st.integers(1, 2))
    return steps, n_out


def run(steps, n_out, *inputs):
    nodes = list(inputs)
    for name, args in steps:
        fn = UNARY[name] if name in UNARY else BINARY[name]
        nodes.append(fn(*(nodes[i] if nodes[i].shape == SHAPE else _full(nodes[i])
                          for i in args)))
    # the last nodes are outputs; earlier ones are usually read more than once (fan-out)
    return tuple(nodes[-n_out:])


@given(programs(), floats(SHAPE, -2, 2), floats(SHAPE, -2, 2), floats((3,), -2, 2))
def test_random_expression_graphs_pass_gradcheck(program, a, b, c):
    steps, n_out = program
    inputs = [Tensor(a, requires_grad=True), Tensor(b, requires_grad=True),
              Tensor(c, requires_grad=True)]
    assert mg.gradcheck(lambda *xs: run(steps, n_out, *xs), inputs)


@given(floats(SHAPE, -2, 2))
def test_shared_subexpression_gradient_is_the_sum_of_both_paths(a):
    x = Tensor(a, requires_grad=True)
    h = x.tanh()                       # used by three consumers
    out = (h * h + h.sigmoid() - h).sum()
    out.backward()
    t = np.tanh(a)
    s = 1 / (1 + np.exp(-t))
    expected = (2 * t + s * (1 - s) - 1) * (1 - t * t)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-10, atol=1e-12)
