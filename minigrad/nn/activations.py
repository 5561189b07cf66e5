"""Activation and shape modules for ``Sequential`` pipelines: Softmax, LogSoftmax, GELU,
Identity, Flatten (ReLU, Tanh and Sigmoid live in ``layers.py``). None holds parameters; each
calls the function of the same name in ``minigrad.functional`` or a Tensor method.
"""
from __future__ import annotations

from typing import Any

import minigrad.functional as F
from minigrad.nn.module import Module
from minigrad.ops.aliases import axis_aliases
from minigrad.tensor import Tensor

__all__ = ["Softmax", "LogSoftmax", "GELU", "Identity", "Flatten"]


class Softmax(Module):
    """softmax along ``dim`` (alias ``axis``). Without one, the LAST axis (PyTorch's deprecated
    implicit choice differs for 0-, 1- and 3-d inputs; give ``dim`` to be explicit)."""

    @axis_aliases
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = -1 if dim is None else int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log_softmax along ``dim`` (alias ``axis``); without one, the LAST axis (see Softmax)."""

    @axis_aliases
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = -1 if dim is None else int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    """x * Phi(x); ``approximate='tanh'`` uses PyTorch's tanh formula (see ``F.gelu``)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Identity(Module):
    """Returns its input unchanged (a placeholder); any constructor arguments are ignored, as in
    PyTorch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge the axes ``start_dim`` .. ``end_dim`` (inclusive) into one; the defaults (1, -1)
    keep the batch axis and flatten the rest, as PyTorch."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        nd = max(x.ndim, 1)
        s, e = self.start_dim, self.end_dim
        if not (-nd <= s < nd and -nd <= e < nd) or s % nd > e % nd:
            raise ValueError(f"Flatten: start_dim {s} and end_dim {e} do not select a range of "
                             f"axes of an input shaped {x.shape}")
        s, e = s % nd, e % nd
        shape = x.shape
        if x.ndim == 0:
            return x.reshape(1)
        merged = 1
        for n in shape[s:e + 1]:
            merged *= n
        return x.reshape(*shape[:s], merged, *shape[e + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
