"""Multi-tensor hand-offs for the optimizer and gradient clipping: many arrays in one kernel
call instead of one numpy pass per array and operation.

* ``AdamBatch``: ``optim.Adam.step`` collects the parameters whose four arrays the kernel takes
  and updates them with one ``kernels.adam_update_many`` call per dtype; the rule it computes
  is ``Adam._numpy_update`` (steps 1-3), which still runs every other parameter.
* ``sum_of_squares``: the sum of squares of every gradient element for
  ``nn.utils.clip_grad_norm_``, one ``kernels.sum_of_squares_many`` call per dtype.
"""
from __future__ import annotations

import numpy as np

from minigrad.fast import kernels


def same_layout(*arrays: np.ndarray) -> bool:
    """True when the arrays share one float dtype and shape and all are C-contiguous."""
    first = arrays[0]
    return first.dtype in (np.float32, np.float64) and all(
        a.dtype == first.dtype and a.shape == first.shape and a.flags.c_contiguous
        for a in arrays)


class AdamBatch:
    """Parameters gathered for one multi-tensor Adam update per dtype (see module docstring)."""

    def __init__(self) -> None:
        # dtype -> (params, grads, exp_avgs, exp_avg_sqs, step sizes, sqrt(bc2)s)
        self._by_dtype: dict[np.dtype, tuple[list, ...]] = {}

    def add(self, param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray,
            exp_avg_sq: np.ndarray, step_size: float, bc2_sqrt: float) -> bool:
        """Take one parameter's arrays if the kernel can (one dtype, shape and C order);
        False when it cannot, and the caller updates it in numpy."""
        if not same_layout(param, grad, exp_avg, exp_avg_sq):
            return False
        lists = self._by_dtype.setdefault(param.dtype, ([], [], [], [], [], []))
        for items, item in zip(lists, (param, grad, exp_avg, exp_avg_sq, step_size, bc2_sqrt)):
            items.append(item)
        return True

    def run(self, beta1: float, beta2: float, eps: float) -> None:
        """Update every gathered parameter in place: one kernel call per dtype."""
        for params, grads, ms, vs, step_sizes, bc2_sqrts in self._by_dtype.values():
            kernels.adam_update_many(params, grads, ms, vs, beta1, beta2, eps, step_sizes,
                                     bc2_sqrts)
        self._by_dtype.clear()


def sum_of_squares(grads: list[np.ndarray]) -> float:
    """The sum of the squares of every gradient element, in float64: one kernel call per
    dtype for C-contiguous float gradients, numpy for others."""
    by_dtype: dict[np.dtype, list[np.ndarray]] = {}
    total = 0.0
    for g in grads:
        if type(g) is np.ndarray and g.dtype in (np.float32, np.float64) and g.flags.c_contiguous:
            by_dtype.setdefault(g.dtype, []).append(g)
        else:
            r = np.asarray(g, dtype=np.float64).reshape(-1)
            total += float(np.dot(r, r))
    return total + sum(kernels.sum_of_squares_many(gs) for gs in by_dtype.values())
