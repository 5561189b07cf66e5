"""Numerical gradient checking: central differences in float64 against backward()."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from minigrad.engine import no_grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by gradcheck when an analytic gradient disagrees with the numerical one."""


def _scalar_output(fn: Callable, inputs: Sequence[Tensor]):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor)]


def _weighted_sum(outs, weights) -> float:
    return float(sum((o.data.astype(np.float64) * w).sum() for o, w in zip(outs, weights)))


def numerical_jacobian_vector(fn, inputs, weights, eps: float):
    """d(sum_k w_k . out_k)/d input for every float input, by central differences."""
    grads = []
    with no_grad():
        for t in inputs:
            if not (isinstance(t, Tensor) and t.requires_grad):
                grads.append(None)
                continue
            g = np.zeros(t.data.shape, dtype=np.float64)
            flat, gflat = t.data.reshape(-1), g.reshape(-1)
            for i in range(flat.size):
                orig = flat[i]
                flat[i] = orig + eps
                plus = _weighted_sum(_scalar_output(fn, inputs), weights)
                flat[i] = orig - eps
                minus = _weighted_sum(_scalar_output(fn, inputs), weights)
                flat[i] = orig
                gflat[i] = (plus - minus) / (2 * eps)
            grads.append(g)
    return grads


def gradcheck(fn: Callable, inputs: Sequence[Tensor], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """Compare backward() of ``fn(*inputs)`` with central differences, in float64.

    Float inputs are converted to float64 copies (their requires_grad kept). Each output is
    contracted with a fixed random weight, so every element of every output is checked.
    On disagreement it names the input and element, with both values."""
    inputs = [Tensor(t.data.astype(np.float64), requires_grad=t.requires_grad)
              if isinstance(t, Tensor) and t.dtype.kind == "f" else t for t in inputs]
    if not any(isinstance(t, Tensor) and t.requires_grad for t in inputs):
        raise ValueError("gradcheck: no input has requires_grad=True; nothing to check")
    rng = np.random.default_rng(seed)
    outs = _scalar_output(fn, inputs)
    weights = [rng.standard_normal(o.shape) for o in outs]
    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    total = None
    for o, w in zip(outs, weights):
        if not o.requires_grad:
            continue
        term = (o * Tensor(w.astype(o.dtype))).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("gradcheck: no output of fn depends on an input that requires grad")
    total.backward()
    numeric = numerical_jacobian_vector(fn, inputs, weights, eps)
    for k, (t, num) in enumerate(zip(inputs, numeric)):
        if num is None:
            continue
        ana = np.zeros_like(num) if t.grad is None else t.grad.astype(np.float64)
        bad = ~np.isclose(ana, num, atol=atol, rtol=rtol)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            msg = (f"gradcheck: gradient of input {k} (shape {t.shape}) disagrees at element "
                   f"{idx}: backward gives {ana[idx]:.8g}, central differences give "
                   f"{num[idx]:.8g} ({int(bad.sum())} of {bad.size} elements differ)")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
