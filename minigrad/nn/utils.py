"""Gradient clipping (as torch.nn.utils): clip_grad_norm_ and clip_grad_value_.

Both work in place on ``p.grad`` and skip parameters whose gradient is None.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from minigrad.fast import multi_tensor
from minigrad.optim import check_grad
from minigrad.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Tensor | Iterable[Tensor], op: str) -> list[Tensor]:
    """The parameters that have a gradient, each checked to be a float array of its shape."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if p.grad is not None:
            where = f"{p.name!r} (parameter {i})" if p.name else f"parameter {i}"
            check_grad(p.grad, p, op, where)
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The joint norm is the ``norm_type`` norm of the vector of all gradient elements (inf: the
    largest absolute value). Every gradient is multiplied by min(1, max_norm / (norm + 1e-6)),
    as PyTorch does. Returns the norm before clipping (a float)."""
    params = _grads(parameters, "clip_grad_norm_")
    if not params:
        return 0.0
    norm_type = float(norm_type)
    # 1. the norm over all gradient elements together (2: sqrt of the sum of squares; else the
    #    norm of the per-gradient norms, which is the same)
    if math.isinf(norm_type):
        total = max(float(np.abs(p.grad).max()) if p.grad.size else 0.0 for p in params)
    elif norm_type == 2.0:
        total = math.sqrt(multi_tensor.sum_of_squares([p.grad for p in params]))
    else:
        per = np.array([np.linalg.norm(p.grad.ravel().astype(np.float64), ord=norm_type)
                        for p in params])
        total = float(np.linalg.norm(per, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is {total}; pass error_if_nonfinite=False to clip anyway")
    # 2. scale in place (always, by a factor of at most 1)
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef != 1.0:  # a factor of exactly 1 leaves every element as it is
        for p in params:
            p.grad *= p.grad.dtype.type(coef)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _grads(parameters, "clip_grad_value_"):
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
