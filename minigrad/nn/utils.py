"""Gradient clipping (as torch.nn.utils): clip_grad_norm_ and clip_grad_value_.

Both work in place on ``p.grad`` and skip parameters whose gradient is None.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from minigrad.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The joint norm is the ``norm_type`` norm of the vector of all gradient elements (inf: the
    largest absolute value). Every gradient is multiplied by min(1, max_norm / (norm + 1e-6)),
    as PyTorch does. Returns the norm before clipping (a float)."""
    params = _grads(parameters)
    if not params:
        return 0.0
    norm_type = float(norm_type)
    # 1. one norm per gradient, 2. the norm of those norms (the same as over all elements)
    if math.isinf(norm_type):
        total = max(float(np.abs(p.grad).max()) if p.grad.size else 0.0 for p in params)
    elif norm_type == 2.0:
        # sqrt(r . r) on the raveled float64 gradient: what np.linalg.norm does, minus its checks;
        # every gradient is widened (exactly) into one scratch buffer instead of a fresh array
        scratch = np.empty(max(p.grad.size for p in params), dtype=np.float64)
        per = [math.sqrt(float(np.dot(r, r))) for r in (_widen(p.grad, scratch) for p in params)]
        total = float(np.linalg.norm(np.array(per), ord=2))
    else:
        per = np.array([np.linalg.norm(p.grad.ravel().astype(np.float64), ord=norm_type)
                        for p in params])
        total = float(np.linalg.norm(per, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is {total}; pass error_if_nonfinite=False to clip anyway")
    # 3. scale in place (always, by a factor of at most 1)
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef != 1.0:  # a factor of exactly 1 leaves every element as it is
        for p in params:
            p.grad *= p.grad.dtype.type(coef)
    return total


def _widen(grad: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``grad`` raveled into the front of the float64 ``scratch`` (a view of it)."""
    r = scratch[:grad.size]
    np.copyto(r, grad.reshape(-1))
    return r


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _grads(parameters):
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
