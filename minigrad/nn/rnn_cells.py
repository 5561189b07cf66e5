"""Recurrent cells written with primitive ops only: RNNCell, LSTMCell (optionally with
peepholes) and GRUCell, plus the one-step functions they share with the sequence layers.

Each step function is the lecture formula, line by line; the autograd engine derives the
backward pass (backprop through time) from the graph these lines build.

Weights follow PyTorch's names, shapes, gate orders and default initialisation
(uniform in +-1/sqrt(hidden_size)), so ``state_dict`` copies either way.

Seeding: parameters are drawn from ``rng=`` (a ``numpy.random.Generator`` or an int seed,
resolved by ``minigrad.random.resolve_rng``). Without it they come from minigrad's default
generator, which ``minigrad.manual_seed(seed)`` resets, so one call before building a model
makes it repeatable.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.nn.module import Module, Parameter, check_input_dtype
from minigrad.ops.linalg import Linear
from minigrad.ops.shape import split
from minigrad.random import resolve_rng
from minigrad.tensor import Tensor


def uniform_parameter(rng: np.random.Generator, shape: tuple[int, ...], hidden_size: int,
                      dtype: Any) -> Parameter:
    """PyTorch's default recurrent init: U(-k, k) with k = 1/sqrt(hidden_size)."""
    k = 1.0 / np.sqrt(hidden_size)
    return Parameter(rng.uniform(-k, k, size=shape), dtype=dtype)


def _affine(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    """x W^T + b (the bias is optional), as one ``linear`` node: it keeps x and W for backward
    (x @ w.T would store a transposed copy of W at every time step)."""
    return Linear.apply(x, w, b)


# ---- one time step of each cell (shared by the cells and the sequence layers) ------------
def rnn_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None, nonlinearity: str = "tanh") -> Tensor:
    """h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu."""
    a = _affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh)
    return a.tanh() if nonlinearity == "tanh" else a.relu()


def lstm_step(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None,
              w_peep: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step, gates in PyTorch's order i, f, g, o:

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi [+ p_i * c])
        f = sigmoid(W_if x + b_if + W_hf h + b_hf [+ p_f * c])
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c' = f * c + i * g
        o = sigmoid(W_io x + b_io + W_ho h + b_ho [+ p_o * c'])
        h' = o * tanh(c')

    The bracketed peephole terms are used when ``w_peep`` (rows p_i, p_f, p_o) is given."""
    hidden = h.shape[-1]
    a_i, a_f, a_g, a_o = split(_affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh), hidden, axis=-1)
    if w_peep is not None:
        p_i, p_f, p_o = split(w_peep, 1, axis=0)  # each (1, H), broadcast over the batch
        a_i = a_i + p_i * c
        a_f = a_f + p_f * c
    i = a_i.sigmoid()
    f = a_f.sigmoid()
    g = a_g.tanh()
    c_new = f * c + i * g
    if w_peep is not None:
        a_o = a_o + p_o * c_new
    o = a_o.sigmoid()
    h_new = o * c_new.tanh()
    return h_new, c_new


def gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None) -> Tensor:
    """One GRU step, gates in PyTorch's order r, z, n:

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h"""
    hidden = h.shape[-1]
    x_r, x_z, x_n = split(_affine(x, w_ih, b_ih), hidden, axis=-1)
    h_r, h_z, h_n = split(_affine(h, w_hh, b_hh), hidden, axis=-1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * h


# ---- cell modules ------------------------------------------------------------------------
class _CellBase(Module):
    """Parameters and argument checks shared by the three cells."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, dtype: Any,
                 rng: Any) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"{type(self).__name__}: input_size and hidden_size must be "
                             f"positive, got {input_size} and {hidden_size}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = np.dtype(dtype)
        gen = resolve_rng(rng, type(self).__name__)
        gh = self.gates * hidden_size
        self.weight_ih = uniform_parameter(gen, (gh, input_size), hidden_size, dtype)
        self.weight_hh = uniform_parameter(gen, (gh, hidden_size), hidden_size, dtype)
        if bias:
            self.bias_ih = uniform_parameter(gen, (gh,), hidden_size, dtype)
            self.bias_hh = uniform_parameter(gen, (gh,), hidden_size, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    @property
    def dtype(self) -> np.dtype:
        """The parameters' dtype (it follows ``.to()`` / ``.double()`` / ``.float()``)."""
        return self.weight_ih.dtype

    def _check_input(self, x: Tensor) -> tuple[Tensor, bool]:
        """Returns x as (B, I) and whether it came unbatched as (I,)."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (batch, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        check_input_dtype(name, x, self.dtype)
        return (x.reshape(1, self.input_size), True) if x.ndim == 1 else (x, False)

    def _state(self, s: Tensor | None, x: Tensor, unbatched: bool, what: str) -> Tensor:
        """Check (or create as zeros) one state tensor of shape (B, H)."""
        shape = (x.shape[0], self.hidden_size)
        if s is None:
            return Tensor(np.zeros(shape, dtype=self.dtype))
        want = (self.hidden_size,) if unbatched else shape
        if not isinstance(s, Tensor) or s.shape != want:
            got = s.shape if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"{type(self).__name__}: {what} has shape {got}, expected {want} "
                             f"for input of shape {x.shape[-1:] if unbatched else x.shape}")
        if s.dtype != self.dtype:
            raise TypeError(f"{type(self).__name__}: {what} dtype {s.dtype} differs from the "
                            f"parameters' dtype {self.dtype}")
        return s.reshape(shape) if unbatched else s

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}"
                + ("" if self.bias else ", bias=False"))


class RNNCell(_CellBase):
    """Elman cell: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu.

    forward(x (B, I) or (I,), hx (B, H) or None) -> h' (B, H)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype: Any = np.float32, rng: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = self._check_input(x)
        h = self._state(hx, x, unbatched, "hx")
        h_new = rnn_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                         self.nonlinearity)
        return h_new.reshape(self.hidden_size) if unbatched else h_new

    def extra_repr(self) -> str:
        return super().extra_repr() + (", nonlinearity='relu'"
                                       if self.nonlinearity == "relu" else "")


class LSTMCell(_CellBase):
    """LSTM cell (gates i, f, g, o). ``peephole=True`` adds ``weight_peephole`` (3, H), rows
    p_i, p_f, p_o, letting the gates see the cell state (PyTorch has no peepholes).

    forward(x (B, I), hx=(h, c) each (B, H) or None) -> (h', c')."""

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 peephole: bool = False, dtype: Any = np.float32, rng: Any = None) -> None:
        gen = resolve_rng(rng, "LSTMCell")
        super().__init__(input_size, hidden_size, bias, dtype, gen)
        self.peephole = peephole
        if peephole:
            self.weight_peephole = uniform_parameter(gen, (3, hidden_size), hidden_size, dtype)
        else:
            self.register_parameter("weight_peephole", None)

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, Tensor]:
        x, unbatched = self._check_input(x)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTMCell: hx must be a pair (h, c) or None")
        h = self._state(None if hx is None else hx[0], x, unbatched, "h")
        c = self._state(None if hx is None else hx[1], x, unbatched, "c")
        h_new, c_new = lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih,
                                 self.bias_hh, self.weight_peephole)
        if unbatched:
            return h_new.reshape(self.hidden_size), c_new.reshape(self.hidden_size)
        return h_new, c_new

    def extra_repr(self) -> str:
        return super().extra_repr() + (", peephole=True" if self.peephole else "")


class GRUCell(_CellBase):
    """GRU cell (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
    h' = (1 - z) * n + z * h).

    forward(x (B, I), hx (B, H) or None) -> h' (B, H)."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, dtype, rng)

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = self._check_input(x)
        h = self._state(hx, x, unbatched, "hx")
        h_new = gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h_new.reshape(self.hidden_size) if unbatched else h_new
