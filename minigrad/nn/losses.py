"""Loss modules (as torch.nn's): CrossEntropyLoss, NLLLoss, MSELoss, BCEWithLogitsLoss. Each holds
its options and calls the function in ``minigrad.functional``.

CrossEntropyLoss and NLLLoss take classes LAST: scores shaped (..., C) with integer targets
shaped (...), so an RNN's (N, T, C) output needs no permute. PyTorch puts the classes in dim 1
((N, C, ...)); this is minigrad's one deliberate difference.
"""
from __future__ import annotations

from typing import Any

import minigrad.functional as F
from minigrad.nn.module import Module
from minigrad.ops.loss import _REDUCTIONS
from minigrad.tensor import Tensor

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss"]


class _Loss(Module):
    def __init__(self, reduction: str) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy: ``loss(logits, target)`` with logits (..., C), classes LAST, and
    integer targets (...); 'mean' averages over targets that are not ``ignore_index`` (a
    weighted mean with per-class ``weight`` (C,))."""

    def __init__(self, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index,
                               reduction=self.reduction, weight=self.weight)


class NLLLoss(_Loss):
    """Negative log-likelihood: ``loss(log_probs, target)`` with log-probabilities (..., C),
    classes LAST, and integer targets (...); pair it with ``LogSoftmax(dim=-1)``."""

    def __init__(self, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, log_probs: Tensor, target: Any) -> Tensor:
        return F.nll_loss(log_probs, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """Squared error ``(input - target)^2``, averaged ('mean'), summed ('sum') or not ('none')."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw logits with targets in [0, 1] (same shape); ``weight``
    rescales each element's loss and ``pos_weight`` the positive term, as PyTorch."""

    def __init__(self, weight: Any = None, reduction: str = "mean",
                 pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, reduction=self.reduction,
                                                  pos_weight=self.pos_weight, weight=self.weight)
