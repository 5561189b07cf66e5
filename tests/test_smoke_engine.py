"""A first end-to-end check of the engine against central differences."""
import numpy as np

import minigrad as mg
from minigrad import Tensor


def test_composed_expression_matches_central_differences():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)

    def f(x, w, b):
        h = (x @ w + b).tanh() * (x @ w).sigmoid()
        return h.sum(axis=0).log_softmax().sum() + x.max(axis=1).mean()

    assert mg.gradcheck(f, [x, w, b])
