"""Sequence layers RNN, LSTM and GRU (multi-layer, bidirectional, variable lengths), and the
switch between the fused compiled path and the readable primitive graph.

Both paths compute the same thing: the primitive path unrolls the cells of
``minigrad.nn.rnn_cells`` over time (one graph node per primitive per step); the fused path
hands each layer direction to ``minigrad.fast.fused.sequence`` (one node per layer and
direction). ``fused=None`` on a layer means the library default: ``set_fused_default(False)``
or ``with use_fused(False):`` selects the primitive graph everywhere.

``lengths`` (one int per batch row): outputs past a row's length are zero and its final state
is the one at its own last step; the reverse direction starts at each row's last real step.
On the primitive path this is a mask m = (t < L) of shape (B, 1) at each time position t:
    state_t = m * h_new + (1 - m) * state_{t-1},    output_t = m * h_new.

``record_hidden_grads=True`` makes backward fill ``layer.hidden_grads``: one ndarray (T, B, H)
per (layer, direction), in h_n's order, of the total dL/dh_t (zero past a row's length).

Initial weights (uniform in +-1/sqrt(hidden_size), as PyTorch) and dropout masks come from
``rng=`` (a numpy Generator or an int seed) or else from minigrad's default generator, which
``minigrad.manual_seed(seed)`` resets.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from minigrad.nn.module import Module, check_input_dtype
from minigrad.nn.rnn_cells import (GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step,
                                   uniform_parameter)
from minigrad.fast import fold, fused
from minigrad.ops.nn_ops import check_lengths
from minigrad.ops.shape import concat, split, stack
from minigrad.random import resolve_rng
from minigrad.tensor import Tensor

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "set_fused_default",
           "get_fused_default", "use_fused"]

_FUSED_DEFAULT = True
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ---- the global fused switch ---------------------------------------------------------------
def set_fused_default(flag: bool) -> None:
    """Make layers built with ``fused=None`` use the fused kernels (True) or the graph."""
    global _FUSED_DEFAULT
    _FUSED_DEFAULT = bool(flag)


def get_fused_default() -> bool:
    """Whether layers built with ``fused=None`` use the fused kernels (see set_fused_default)."""
    return _FUSED_DEFAULT


@contextlib.contextmanager
def use_fused(flag: bool) -> Iterator[None]:
    """``with use_fused(False):`` runs layers with ``fused=None`` on the primitive graph."""
    previous = _FUSED_DEFAULT
    set_fused_default(flag)
    try:
        yield
    finally:
        set_fused_default(previous)


def _recorder(buffer: np.ndarray, t: int) -> Callable[[np.ndarray], None]:
    def hook(grad: np.ndarray) -> None:
        buffer[t] += grad
    return hook


# ---- the sequence layers ---------------------------------------------------------------------
class _RNNBase(Module):
    """Parameters, argument checks and the layer/direction loop shared by RNN, LSTM, GRU."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, fused: bool | None = None,
                 dtype: Any = np.float32, rng: Any = None, peephole: bool = False,
                 record_hidden_grads: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: input_size, hidden_size and num_layers must be "
                             f"positive, got {input_size}, {hidden_size}, {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.fused = float(dropout), bidirectional, fused
        self.peephole, self.record_hidden_grads = peephole, record_hidden_grads
        dtype = np.dtype(dtype)
        self.num_directions = 2 if bidirectional else 1
        self.hidden_grads: list[np.ndarray] | None = None
        # an int seed becomes one Generator here, so dropout masks differ from call to call
        self._rng = gen = resolve_rng(rng, name)
        gh, h = _GATES[mode] * hidden_size, hidden_size
        for k in range(num_layers):
            layer_in = input_size if k == 0 else hidden_size * self.num_directions
            for sfx in self._suffixes():
                shapes = [(f"weight_ih_l{k}{sfx}", (gh, layer_in)),
                          (f"weight_hh_l{k}{sfx}", (gh, h))]
                if bias:
                    shapes += [(f"bias_ih_l{k}{sfx}", (gh,)), (f"bias_hh_l{k}{sfx}", (gh,))]
                if peephole:
                    shapes.append((f"weight_peephole_l{k}{sfx}", (3, h)))
                for pname, shape in shapes:
                    setattr(self, pname, uniform_parameter(gen, shape, h, dtype))

    @property
    def dtype(self) -> np.dtype:
        """The parameters' dtype (it follows ``.to()`` / ``.double()`` / ``.float()``)."""
        return self.weight_hh_l0.dtype

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _weights(self, k: int, d: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_peep) of layer k, direction d (None where absent)."""
        sfx = self._suffixes()[d]
        return tuple(getattr(self, f"{n}_l{k}{sfx}", None)
                     for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole"))

    def _use_fused(self) -> bool:
        return bool(_FUSED_DEFAULT if self.fused is None else self.fused)

    # ---- argument checks ---------------------------------------------------------------
    def _check_input(self, x: Any) -> tuple[int, int, bool]:
        """(steps, batch, whether the input came unbatched (T, I)) of a valid input."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
        layout = "(batch, seq, feature)" if self.batch_first else "(seq, batch, feature)"
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input of rank 3 {layout} or rank 2 "
                             f"(seq, feature), got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has {x.shape[-1]} features (shape {x.shape}), "
                             f"expected input_size={self.input_size}")
        check_input_dtype(name, x, self.dtype)
        unbatched = x.ndim == 2
        steps, batch = (x.shape[0], 1) if unbatched else \
            (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        if steps == 0:
            raise ValueError(f"{name}: the input sequence is empty (shape {x.shape})")
        return steps, batch, unbatched

    def _time_major(self, x: Tensor, unbatched: bool) -> Tensor:
        """The input as (T, B, I) (a graph op when it has to move)."""
        if unbatched:
            return x.reshape(x.shape[0], 1, x.shape[1])
        return x.transpose(1, 0, 2) if self.batch_first else x

    def _check_lengths(self, lengths: Any, steps: int, batch: int,
                       unbatched: bool) -> np.ndarray | None:
        if lengths is None:
            return None
        if unbatched:
            raise ValueError(f"{type(self).__name__}: lengths needs a batched (rank 3) input")
        return check_lengths(type(self).__name__, lengths, steps, batch)

    def _check_state(self, s: Any, batch: int, unbatched: bool, what: str) -> list:
        """Split one initial state (L*D, B, H) into L*D tensors (B, H); zeros for None."""
        n, hsz = self.num_layers * self.num_directions, self.hidden_size
        if s is None:
            zeros = Tensor(np.zeros((batch, hsz), dtype=self.dtype))
            return [zeros] * n
        want = (n, hsz) if unbatched else (n, batch, hsz)
        name = type(self).__name__
        if not isinstance(s, Tensor) or s.shape != want:
            got = s.shape if isinstance(s, Tensor) else type(s).__name__
            layout = ("for an unbatched input" if unbatched
                      else "= (num_layers * num_directions, batch, hidden_size)")
            raise ValueError(f"{name}: {what} has shape {got}, expected {want} {layout}")
        if s.dtype != self.dtype:
            raise TypeError(f"{name}: {what} dtype {s.dtype} differs from the parameters' "
                            f"dtype {self.dtype}")
        return [p.reshape(batch, hsz) for p in split(s, 1, axis=0)]

    # ---- forward -------------------------------------------------------------------------
    def forward(self, input: Tensor, hx: Any = None, lengths: Any = None):
        """input (T, B, I) ((B, T, I) with batch_first; (T, I) unbatched); hx None or
        (L*D, B, H) (an (h_0, c_0) pair for LSTM); lengths None or one int per row.
        Returns (output (T, B, D*H), h_n) or, for LSTM, (output, (h_n, c_n))."""
        lstm = self.mode == "LSTM"
        steps, batch, unbatched = self._check_input(input)
        lens = self._check_lengths(lengths, steps, batch, unbatched)
        if lstm and hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError(f"{type(self).__name__}: hx must be a pair (h_0, c_0) or None")
        h0 = self._check_state(hx[0] if lstm and hx is not None else hx, batch, unbatched,
                               "h_0" if lstm else "hx")
        c0 = self._check_state(hx[1] if hx is not None else None, batch, unbatched, "c_0") \
            if lstm else [None] * len(h0)
        fast = self._use_fused()
        masks = None if lens is None or fast else _step_masks(lens, steps, self.dtype)
        n_states = self.num_layers * self.num_directions
        self.hidden_grads = [np.zeros((steps, batch, self.hidden_size), dtype=self.dtype)
                             for _ in range(n_states)] if self.record_hidden_grads else None
        h_n, c_n = [], []
        # an Embedding's output is read as its table by layer 0 when that pays (fast.fold)
        src = fold.source(input, steps, batch, self.batch_first, unbatched) if fast else None
        layer_in = None if src is not None else self._time_major(input, unbatched)
        for k in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                i = k * self.num_directions + d
                buf = None if self.hidden_grads is None else self.hidden_grads[i]
                weights, reverse = self._weights(k, d), d == 1
                if fast:  # the hand-off to the fast floor: one node for the layer direction
                    out, h, c = fused.sequence(self.mode, layer_in, h0[i], c0[i], weights, lens,
                                               reverse, buf, src if k == 0 else None)
                else:
                    out, h, c = self._run_graph(layer_in, h0[i], c0[i], weights, masks,
                                                reverse, buf)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            layer_in = outs[0] if len(outs) == 1 else concat(outs, axis=2)
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                layer_in = self._drop(layer_in)
        output = layer_in
        h_n = stack(h_n, axis=0)
        c_n = stack(c_n, axis=0) if lstm else None
        if unbatched:
            output = output.reshape(steps, output.shape[-1])
            h_n = h_n.reshape(n_states, self.hidden_size)
            c_n = c_n.reshape(n_states, self.hidden_size) if lstm else None
        elif self.batch_first:
            output = output.transpose(1, 0, 2)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def _drop(self, x: Tensor) -> Tensor:
        """Inverted dropout between layers (training mode only)."""
        p = self.dropout
        keep = self._rng.random(x.shape) >= p
        scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
        return x * Tensor((keep * scale).astype(self.dtype))

    def _run_graph(self, x: Tensor, h: Tensor, c: Tensor | None, weights: tuple,
                   masks: list | None, reverse: bool,
                   buf: np.ndarray | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """One layer, one direction, unrolled from the primitive cells."""
        w_ih, w_hh, b_ih, b_hh, w_peep = weights
        steps = x.shape[0]
        xs = [s.reshape(s.shape[1:]) for s in split(x, 1, axis=0)]
        outputs: list[Tensor | None] = [None] * steps
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            # 1. one cell step from the state carried in
            if self.mode == "LSTM":
                h_new, c_new = lstm_step(xs[t], h, c, w_ih, w_hh, b_ih, b_hh, w_peep)
            elif self.mode == "GRU":
                h_new = gru_step(xs[t], h, w_ih, w_hh, b_ih, b_hh)
            else:
                h_new = rnn_step(xs[t], h, w_ih, w_hh, b_ih, b_hh,
                                 "relu" if self.mode == "RNN_RELU" else "tanh")
            if buf is not None and h_new.requires_grad:
                h_new.register_hook(_recorder(buf, t))
            # 2. rows past their length keep their old state and output zeros
            if masks is None or masks[t] is None:
                h, c, outputs[t] = h_new, (c_new if c is not None else None), h_new
            else:
                m, keep_old = masks[t]
                h = m * h_new + keep_old * h
                c = m * c_new + keep_old * c if c is not None else None
                outputs[t] = m * h_new
        return stack(outputs, axis=0), h, c

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for key, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                             ("dropout", 0.0), ("bidirectional", False), ("fused", None),
                             ("peephole", False)):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)!r}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s


def _step_masks(lens: np.ndarray, steps: int, dtype: np.dtype) -> list:
    """Per time position t: None when every row is still running, else the constant pair
    (m, 1 - m) with m = (t < L) of shape (B, 1)."""
    masks: list = []
    for t in range(steps):
        m = (t < lens).astype(dtype)[:, None]
        masks.append(None if m.all() else (Tensor(m), Tensor(1 - m)))
    return masks


class RNN(_RNNBase):
    """Multi-layer Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    ``forward(input, hx=None, lengths=None) -> (output, h_n)``; shapes as torch.nn.RNN."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, fused: bool | None = None,
                 dtype: Any = np.float32, rng: Any = None,
                 record_hidden_grads: bool = False) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         fused, dtype, rng, record_hidden_grads=record_hidden_grads)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """Multi-layer LSTM (gates i, f, g, o; optional peepholes ``weight_peephole_l{k}`` (3, H)).

    ``forward(input, hx=None, lengths=None) -> (output, (h_n, c_n))``; shapes as torch.nn.LSTM."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, fused: bool | None = None, peephole: bool = False,
                 dtype: Any = np.float32, rng: Any = None,
                 record_hidden_grads: bool = False) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, fused, dtype, rng, peephole=peephole,
                         record_hidden_grads=record_hidden_grads)


class GRU(_RNNBase):
    """Multi-layer GRU (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))).

    ``forward(input, hx=None, lengths=None) -> (output, h_n)``; shapes as torch.nn.GRU."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, fused: bool | None = None,
                 dtype: Any = np.float32, rng: Any = None,
                 record_hidden_grads: bool = False) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, fused, dtype, rng,
                         record_hidden_grads=record_hidden_grads)
