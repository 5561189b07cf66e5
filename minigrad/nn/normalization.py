"""LayerNorm (as ``torch.nn.LayerNorm``): normalise each sample over its trailing axes."""
from __future__ import annotations

from typing import Any

import numpy as np

import minigrad.functional as F
from minigrad.nn.module import Module, Parameter, check_input_dtype
from minigrad.tensor import Tensor

__all__ = ["LayerNorm"]


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing ``normalized_shape``
    axes (biased variance). With ``elementwise_affine`` it learns ``weight`` (ones) and ``bias``
    (zeros, omitted with ``bias=False``), both shaped ``normalized_shape``: the names and shapes
    of PyTorch's, so state_dicts carry over."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(int(n) for n in normalized_shape)
        if not shape or any(n <= 0 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive sizes, got "
                             f"{normalized_shape}")
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape), dtype=dtype)
            if bias:
                self.bias = Parameter(np.zeros(shape), dtype=dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """weight to ones, bias to zeros."""
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is not None:
            check_input_dtype(f"LayerNorm({self.normalized_shape})", x, self.weight.dtype)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
