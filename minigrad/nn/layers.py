"""Basic layers: Linear, Embedding, Dropout, Sequential (and the activations ReLU, Tanh,
Sigmoid for Sequential). Parameter names, shapes and default initialisation are PyTorch's.

The math lives in ``minigrad.functional`` (``linear``, ``embedding``, ``dropout``); a layer only
owns its parameters. Each layer takes ``rng=None``: a numpy Generator for its initial weights, or
None for the default generator that ``minigrad.nn.init.manual_seed`` resets.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

import minigrad.functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter, check_input_dtype
from minigrad.tensor import Tensor

__all__ = ["Linear", "Embedding", "Dropout", "Sequential", "ReLU", "Tanh", "Sigmoid"]


class Linear(Module):
    """y = x W^T + b, W shaped (out_features, in_features); W and b ~ U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: Any = np.float32, rng: np.random.Generator | None = None) -> None:
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

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound, rng=rng)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input of shape "
                             f"{x.shape} has last dimension {x.shape[-1]}, expected "
                             f"{self.in_features}")
        check_input_dtype(f"Linear({self.in_features}, {self.out_features})", x,
                          self.weight.dtype)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: row i of ``weight`` (num_embeddings, embedding_dim) is token i's vector.

    weight ~ N(0, 1); the ``padding_idx`` row starts at zero and never gets a gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: Any = np.float32, rng: np.random.Generator | None = None) -> None:
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

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        init.normal_(self.weight, 0.0, 1.0, rng=rng)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices: Any) -> Tensor:
        # the lookup op checks the indices (integers, within the rows) and names the shapes
        return F.embedding(indices, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = rng

    def forward(self, x: Tensor) -> Tensor:
        rng = init.default_generator() if self.rng is None else self.rng
        return F.dropout(x, self.p, self.training, rng=rng)

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
