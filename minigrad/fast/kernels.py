"""Kernel dispatch: every kernel the ops call, as a named function that hands its arguments to
the active implementation, the compiled ``minigrad._ext`` modules or their numpy twins.

An implementation (``Implementation``) names one module per group of kernels; ``active()``
returns the one in use, so a reader sees which code runs:

=========== ================================ ====================================
group       compiled (``minigrad._ext.*``)    numpy twin
=========== ================================ ====================================
elementwise ``elementwise``                  ``minigrad.fast._reference``
embedding   ``embedding``                    ``minigrad.fast._reference``
loss        ``loss`` (or ``loss_avx512``)    ``minigrad.fast._reference``
linear      ``linear``                       ``minigrad.fast._reference``
rnn         ``rnn_kernels`` (``_avx512``)    ``minigrad.fast._reference_rnn``
lstm        ``lstm_kernels`` (``_avx512``)   ``minigrad.fast._reference_rnn``
gru         ``gru_kernels`` (``_avx512``)    ``minigrad.fast._reference_rnn``
=========== ================================ ====================================

The compiled implementation is used when it was built (``backend()`` says 'compiled'), else
the twins with one warning. ``MINIGRAD_BACKEND=numpy`` starts with the twins,
``MINIGRAD_REQUIRE_EXT=1`` makes a missing extension an ImportError, ``use()`` switches at run
time. On a CPU that runs AVX-512 the recurrent and loss groups use their ``*_avx512`` builds
(``variant()`` says 'avx512'; ``MINIGRAD_AVX512=0`` keeps the portable build).

Importing minigrad changes nothing in the process. The process-wide speed settings, BLAS at
one thread (``minigrad.fast.threads``) and the glibc heap tuning (``minigrad.fast.memory``),
are applied by ``apply_speed_settings()``: explicitly, or by the first kernel call.
"""
from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from types import ModuleType

from minigrad.fast import _reference, _reference_rnn, memory, threads


@dataclass(frozen=True)
class Implementation:
    """One module per group of kernels (see the module docstring)."""
    name: str                 # 'compiled' or 'numpy'
    variant: str              # 'avx512' or 'portable' (compiled), 'numpy'
    elementwise: ModuleType   # tanh_backward, sigmoid_backward, adam_update(_many), ...
    embedding: ModuleType     # embedding_backward
    loss: ModuleType          # softmax_xent_forward, softmax_xent_backward
    linear: ModuleType        # linear_forward, linear_backward
    rnn: ModuleType           # rnn_forward, rnn_backward
    lstm: ModuleType          # lstm_forward, lstm_backward
    gru: ModuleType           # gru_forward, gru_backward


# group -> (compiled module name, kernel names); every name exists in both implementations
# with the same signature (tests/test_backend.py checks)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "elementwise": ("elementwise", ("add", "sub", "mul", "div", "tanh_backward",
                                    "sigmoid_backward", "adam_update", "adam_update_many",
                                    "sum_of_squares_many")),
    "embedding": ("embedding", ("embedding_backward",)),
    "loss": ("loss", ("softmax_xent_forward", "softmax_xent_backward")),
    "linear": ("linear", ("linear_forward", "linear_backward")),
    "rnn": ("rnn_kernels", ("rnn_forward", "rnn_backward")),
    "lstm": ("lstm_kernels", ("lstm_forward", "lstm_backward")),
    "gru": ("gru_kernels", ("gru_forward", "gru_backward")),
}
_AVX512_BUILDS = ("loss", "rnn", "lstm", "gru")  # groups also built as <module>_avx512

NUMPY = Implementation("numpy", "numpy", _reference, _reference, _reference, _reference,
                       _reference_rnn, _reference_rnn, _reference_rnn)


def _load_compiled() -> tuple[Implementation | None, Exception | None]:
    """The compiled implementation (None, and the error, when the extension is missing)."""
    try:
        ext = {g: importlib.import_module(f"minigrad._ext.{m}") for g, (m, _) in GROUPS.items()}
        cpu = importlib.import_module("minigrad._ext.cpu")
    except ImportError as exc:
        return None, exc
    variant = "portable"
    if os.environ.get("MINIGRAD_AVX512") != "0" and cpu.is_x86_64_v4():
        try:
            fast = {g: importlib.import_module(f"minigrad._ext.{GROUPS[g][0]}_avx512")
                    for g in _AVX512_BUILDS}
        except ImportError:  # not built on this platform
            fast = {}
        if fast:
            ext.update(fast)
            variant = "avx512"
    return Implementation("compiled", variant, **ext), None


COMPILED, _import_error = _load_compiled()

if os.environ.get("MINIGRAD_BACKEND") == "numpy":
    _active = NUMPY
elif COMPILED is not None:
    _active = COMPILED
else:
    if os.environ.get("MINIGRAD_REQUIRE_EXT") == "1":
        raise ImportError(f"minigrad: MINIGRAD_REQUIRE_EXT=1 but the compiled extension could "
                          f"not be imported ({_import_error}); build it with `pip install .`")
    warnings.warn(f"minigrad: compiled kernels not available ({_import_error}); using the "
                  f"slower numpy reference kernels. Reinstall with `pip install .` to build them.",
                  RuntimeWarning, stacklevel=2)
    _active = NUMPY

_settings_applied = False


def apply_speed_settings() -> None:
    """Apply the process-wide speed settings once: BLAS at one thread unless the user chose
    (``threads.limit_blas_by_default``) and the glibc heap tuning (``memory.tune_heap``). The
    first kernel call does this; call it yourself to have it happen earlier."""
    global _settings_applied
    if not _settings_applied:
        _settings_applied = True
        threads.limit_blas_by_default()
        memory.tune_heap()


def active() -> Implementation:
    """The implementation the kernels below hand their calls to."""
    return _active


def _run() -> Implementation:
    if not _settings_applied:
        apply_speed_settings()
    return _active


def backend() -> str:
    """'compiled' when the Cython kernels are in use, 'numpy' when the numpy twins are."""
    return _active.name


def variant() -> str:
    """'avx512' when the recurrent and loss kernels run their AVX-512 build, 'portable' for
    the portable compiled build, 'numpy' for the twins."""
    return _active.variant


def use(name: str) -> None:
    """Switch kernels at run time: 'compiled' or 'numpy' (used by tests and benchmarks)."""
    global _active
    if name == "compiled":
        if COMPILED is None:
            raise ImportError(f"minigrad: the compiled extension is not available "
                              f"({_import_error}); reinstall with `pip install .`")
        _active = COMPILED
    elif name == "numpy":
        _active = NUMPY
    else:
        raise ValueError(f"kernels.use: expected 'compiled' or 'numpy', got {name!r}")


# ---- the kernels: one named hand-off each (signatures and meaning: the numpy twins) --------
def add(a, b):
    """a + b with numpy's broadcasting; the compiled build runs the float cases of a graph of
    small ops (same shape, a row, a column, one value) without numpy's general broadcasting
    machinery (twin: minigrad.fast._reference.add, numpy's own operator)."""
    return _run().elementwise.add(a, b)


def sub(a, b):
    """a - b (as ``add``)."""
    return _run().elementwise.sub(a, b)


def mul(a, b):
    """a * b (as ``add``)."""
    return _run().elementwise.mul(a, b)


def div(a, b):
    """a / b (as ``add``)."""
    return _run().elementwise.div(a, b)


def sigmoid(x):
    """1 / (1 + exp(-x)) in one pass (twin: minigrad.fast._reference.sigmoid)."""
    return _run().elementwise.sigmoid(x)


def tanh_backward(y, grad):
    """grad * (1 - y^2) for y = tanh(x) (twin: minigrad.fast._reference.tanh_backward)."""
    return _run().elementwise.tanh_backward(y, grad)


def sigmoid_backward(y, grad):
    """grad * y * (1 - y) for y = sigmoid(x) (twin: minigrad.fast._reference.sigmoid_backward)."""
    return _run().elementwise.sigmoid_backward(y, grad)


def adam_update(param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, step_size, bc2_sqrt):
    """One Adam step in place (twin: minigrad.fast._reference.adam_update)."""
    return _run().elementwise.adam_update(param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps,
                                          step_size, bc2_sqrt)


def adam_update_many(params, grads, exp_avgs, exp_avg_sqs, beta1, beta2, eps, step_sizes,
                     bc2_sqrts):
    """adam_update on many parameters in one call (twin: minigrad.fast._reference)."""
    return _run().elementwise.adam_update_many(params, grads, exp_avgs, exp_avg_sqs, beta1,
                                               beta2, eps, step_sizes, bc2_sqrts)


def sum_of_squares_many(arrays):
    """Sum of squares of every element of every array, in float64 (twin: _reference)."""
    return _run().elementwise.sum_of_squares_many(arrays)


def embedding_backward(indices, grad, num_embeddings):
    """Scatter-add of gradient rows into the weight's rows (twin: _reference)."""
    return _run().embedding.embedding_backward(indices, grad, num_embeddings)


def softmax_xent_forward(logits, target, ignore_index):
    """(loss per row, probabilities) of softmax cross-entropy (twin: _reference)."""
    return _run().loss.softmax_xent_forward(logits, target, ignore_index)


def softmax_xent_backward(probs, target, ignore_index, grad_rows, out=None):
    """d logits of softmax cross-entropy (twin: _reference)."""
    return _run().loss.softmax_xent_backward(probs, target, ignore_index, grad_rows, out)


def linear_forward(x, w, b):
    """x @ w^T + b (twin: minigrad.fast._reference.linear_forward)."""
    return _run().linear.linear_forward(x, w, b)


def linear_backward(g, x, w, needs):
    """(dx, dw, db) of the Linear layer (twin: minigrad.fast._reference.linear_backward)."""
    return _run().linear.linear_backward(g, x, w, needs)


def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu):
    """Elman RNN over a sequence (twin: minigrad.fast._reference_rnn.rnn_forward)."""
    return _run().rnn.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu)


def rnn_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, relu, cache, needs):
    """BPTT of rnn_forward (twin: minigrad.fast._reference_rnn.rnn_backward)."""
    return _run().rnn.rnn_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, relu,
                                   cache, needs)


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths, reverse):
    """LSTM over a sequence (twin: minigrad.fast._reference_rnn.lstm_forward)."""
    return _run().lstm.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, lengths,
                                    reverse)


def lstm_backward(grad_out, grad_hn, grad_cn, x, w_ih, w_hh, w_peep, lengths, reverse, cache,
                  needs):
    """BPTT of lstm_forward (twin: minigrad.fast._reference_rnn.lstm_backward)."""
    return _run().lstm.lstm_backward(grad_out, grad_hn, grad_cn, x, w_ih, w_hh, w_peep, lengths,
                                     reverse, cache, needs)


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    """GRU over a sequence (twin: minigrad.fast._reference_rnn.gru_forward)."""
    return _run().gru.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse)


def gru_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, cache, needs):
    """BPTT of gru_forward (twin: minigrad.fast._reference_rnn.gru_backward)."""
    return _run().gru.gru_backward(grad_out, grad_hn, x, w_ih, w_hh, lengths, reverse, cache,
                                   needs)
