"""Attention of the RNN era: one decoder state (or a sequence of them) against the states of an
encoder, with a padding mask.

    additive (Bahdanau):  score(q, k) = v^T tanh(W_q q + W_k k + b)
    dot      (Luong):     score(q, k) = q^T k
    general  (Luong):     score(q, k) = q^T W k

weights = softmax of the scores over the source steps whose mask is True (exactly 0 on padding,
all zeros for a row with no real step), context = sum_s weights_s * values_s. Everything is a
graph of primitives (linear, tanh, matmul, where, softmax), so the engine derives the backward.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import functional as F
from minigrad.nn.layers import Linear
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

__all__ = ["Attention"]

KINDS = ("additive", "dot", "general")


class Attention(Module):
    """Score a query against keys, softmax over the real source steps, average the values.

    ``Attention(query_size, key_size=None, kind="additive", attn_size=None)``; key_size
    defaults to query_size (``"dot"`` needs them equal), attn_size (the width of the additive
    hidden layer) to query_size. Parameters: additive ``query_proj.weight`` (A, Q),
    ``key_proj.weight`` (A, K), ``key_proj.bias`` (A,), ``score.weight`` (1, A) (the v);
    general ``key_proj.weight`` (Q, K) (the W); dot none.

    ``forward(query, keys, values=None, mask=None)``: query (B, Q) or (B, T, Q), keys
    (B, S, K), values (B, S, V) (default: the keys), mask (B, S) boolean, True for real steps.
    Returns ``(context, weights)``: (B, V) and (B, S) for a (B, Q) query, (B, T, V) and
    (B, T, S) for (B, T, Q). ``project_keys(keys)`` computes the part that depends on the keys
    only; pass it as ``projected_keys=`` when the same keys meet a query at every decoder step.
    """

    def __init__(self, query_size: int, key_size: int | None = None, kind: str = "additive",
                 attn_size: int | None = None, dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"Attention: kind must be one of {KINDS}, got {kind!r}")
        key_size = query_size if key_size is None else key_size
        attn_size = query_size if attn_size is None else attn_size
        if min(query_size, key_size, attn_size) <= 0:
            raise ValueError(f"Attention: sizes must be positive, got query_size={query_size}, "
                             f"key_size={key_size}, attn_size={attn_size}")
        if kind == "dot" and key_size != query_size:
            raise ValueError(f"Attention(kind='dot'): query_size {query_size} and key_size "
                             f"{key_size} must be equal (use kind='general' to map between)")
        self.kind, self.query_size, self.key_size = kind, query_size, key_size
        self.attn_size = attn_size if kind == "additive" else None
        self.dtype = np.dtype(dtype)
        if kind == "additive":
            self.query_proj = Linear(query_size, attn_size, bias=False, dtype=dtype, rng=rng)
            self.key_proj = Linear(key_size, attn_size, bias=True, dtype=dtype, rng=rng)
            self.score = Linear(attn_size, 1, bias=False, dtype=dtype, rng=rng)
        elif kind == "general":
            self.key_proj = Linear(key_size, query_size, bias=False, dtype=dtype, rng=rng)

    def project_keys(self, keys: Tensor) -> Tensor:
        """The key-only part of the score: W_k k + b (additive, (B, S, A)); for dot and
        general the keys k or W k transposed to (B, Q, S), ready for the product q^T."""
        self._check_keys(keys)
        if self.kind == "additive":
            return self.key_proj(keys)
        return (keys if self.kind == "dot" else self.key_proj(keys)).transpose(0, 2, 1)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None,
                mask: Any = None, projected_keys: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """(context, weights) for query (B, Q) or (B, T, Q) against keys (B, S, K)."""
        self._check_keys(keys)
        values = keys if values is None else values
        if not isinstance(query, Tensor) or query.ndim not in (2, 3) \
                or query.shape[-1] != self.query_size or query.shape[0] != keys.shape[0]:
            got = query.shape if isinstance(query, Tensor) else type(query).__name__
            raise ValueError(f"Attention: query has shape {got}, expected (B, {self.query_size}) "
                             f"or (B, T, {self.query_size}) with B = {keys.shape[0]} as keys "
                             f"{keys.shape}")
        if not isinstance(values, Tensor) or values.ndim != 3 \
                or values.shape[:2] != keys.shape[:2]:
            got = values.shape if isinstance(values, Tensor) else type(values).__name__
            raise ValueError(f"Attention: values has shape {got}, expected (B, S, V) with "
                             f"(B, S) = {keys.shape[:2]} as keys")
        batch, source = keys.shape[:2]
        single = query.ndim == 2
        q = query.reshape(batch, 1, self.query_size) if single else query   # (B, T, Q)
        kp = self.project_keys(keys) if projected_keys is None else projected_keys
        # 1. scores (B, T, S)
        if self.kind == "additive":
            steps = q.shape[1]
            qp = self.query_proj(q).reshape(batch, steps, 1, self.attn_size)
            hidden = (qp + kp.reshape(batch, 1, source, self.attn_size)).tanh()  # (B,T,S,A)
            scores = self.score(hidden).reshape(batch, steps, source)
        else:
            scores = q @ kp                                            # (B,T,Q)@(B,Q,S)
        # 2. weights over the real steps (exactly 0 on padding), 3. context = weights @ values
        weights = F.masked_softmax(scores, self._mask3(mask, batch, source), axis=-1)
        context = weights @ values
        if single:
            return (context.reshape(batch, values.shape[2]), weights.reshape(batch, source))
        return context, weights

    def _check_keys(self, keys: Any) -> None:
        if not isinstance(keys, Tensor) or keys.ndim != 3 or keys.shape[2] != self.key_size:
            got = keys.shape if isinstance(keys, Tensor) else type(keys).__name__
            raise ValueError(f"Attention: keys has shape {got}, expected (B, S, "
                             f"{self.key_size})")

    @staticmethod
    def _mask3(mask: Any, batch: int, source: int) -> np.ndarray | None:
        if mask is None:
            return None
        m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if m.dtype != np.bool_ or m.shape != (batch, source):
            raise ValueError(f"Attention: mask must be boolean of shape (B, S) = "
                             f"{(batch, source)}, got {m.dtype} {m.shape}")
        return m[:, None, :]

    def extra_repr(self) -> str:
        s = f"{self.query_size}, {self.key_size}, kind={self.kind!r}"
        return s + (f", attn_size={self.attn_size}" if self.kind == "additive" else "")
