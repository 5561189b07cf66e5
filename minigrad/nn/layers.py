"""Basic layers: Linear, Embedding, Dropout, Sequential (and the activations ReLU, Tanh,
Sigmoid for Sequential). Parameter names, shapes and default initialisation are PyTorch's.

The math lives in ``minigrad.functional`` (``linear``, ``embedding``, ``dropout``); a layer only
owns its parameters. Each layer takes ``rng=None``: a numpy Generator or an int seed for its
initial weights (Dropout: its masks), or None for the default generator that
``minigrad.manual_seed`` resets (all resolved by ``minigrad.random.resolve_rng``).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

import minigrad.functional as F
from minigrad.fast import fold
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter, check_input_dtype
from minigrad.random import resolve_rng
from minigrad.tensor import Tensor

__all__ = ["Linear", "Embedding", "Dropout", "Sequential", "ReLU", "Tanh", "Sigmoid"]


class Linear(Module):
    """y = x W^T + b, W shaped (out_features, in_features); W and b ~ U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: in_features and out_features must be positive, got "
                             f"({in_features}, {out_features})")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.zeros((out_features, in_features)), dtype=dtype)
        if bias:
            self.bias = Parameter(np.zeros(out_features), dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Draw W and b from U(-1/sqrt(in_features), 1/sqrt(in_features))."""
        rng = resolve_rng(rng, "Linear")
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound, rng=rng)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        name = f"Linear({self.in_features}, {self.out_features})"
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a Tensor of shape (..., {self.in_features}), "
                            f"got {type(x).__name__}; wrap it with minigrad.tensor(...)")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            last = "no last dimension" if x.ndim == 0 else f"last dimension {x.shape[-1]}"
            raise ValueError(f"{name}: input of shape {x.shape} has {last}, expected shape "
                             f"(..., {self.in_features})")
        check_input_dtype(name, x, self.weight.dtype)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: row i of ``weight`` (num_embeddings, embedding_dim) is token i's vector.

    weight ~ N(0, 1); the ``padding_idx`` row starts at zero and never gets a gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding({num_embeddings}, {embedding_dim}): padding_idx "
                                 f"{padding_idx} is outside [-{num_embeddings}, "
                                 f"{num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(np.zeros((num_embeddings, embedding_dim)), dtype=dtype)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Draw the table from N(0, 1); the padding row is zero."""
        init.normal_(self.weight, 0.0, 1.0, rng=resolve_rng(rng, "Embedding"))
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices: Any) -> Tensor:
        # the lookup op checks the indices (integers, within the rows) and names the shapes
        out = F.embedding(indices, self.weight, padding_idx=self.padding_idx)
        # a note for the fast floor: a fused recurrent layer may read the table instead
        fold.remember_lookup(out, indices, self.weight, self.padding_idx)
        return out

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, rng: Any = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        # resolved once: an int seed gives this layer its own generator, so masks differ
        # from call to call (None: the default generator, reset in place by manual_seed)
        self.rng = resolve_rng(rng, "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Modules called in order; children are named "0", "1", ... (or by an OrderedDict)."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def add_module(self, name: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: entry {name!r} is a {type(module).__name__}, "
                            "not a Module")
        super().add_module(name, module)

    def append(self, module: Module) -> "Sequential":
        """Add ``module`` at the end; returns the Sequential."""
        self.add_module(str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        mods = list(self._modules.values())
        return Sequential(*mods[index]) if isinstance(index, slice) else mods[index]

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise (computed stably)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()
