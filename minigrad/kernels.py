"""Kernel dispatch: the compiled ``minigrad._ext`` modules when built, else the numpy twins.

``backend()`` says which is in use. Set ``MINIGRAD_REQUIRE_EXT=1`` to make a missing extension
an ImportError (CI does), or ``MINIGRAD_BACKEND=numpy`` to force the numpy twins.

The recurrent and loss kernels also come compiled for AVX-512 (``<name>_avx512``, built on
x86-64 Linux): on a CPU that can run them they are used instead (``variant()`` says which; set
``MINIGRAD_AVX512=0`` to keep the portable build).
"""
from __future__ import annotations

import importlib
import os
import warnings

from minigrad import _reference, _reference_rnn

# compiled module minigrad._ext.<name> -> (the module holding the numpy twins, kernel names).
# Every kernel name must exist in both, with the same signature. Register a new .pyx here.
_MODULES: dict[str, tuple[object, tuple[str, ...]]] = {
    "elementwise": (_reference, ("tanh_backward", "sigmoid_backward", "adam_update",
                                "adam_update_many", "sum_of_squares_many")),
    "embedding": (_reference, ("embedding_backward",)),
    "loss": (_reference, ("softmax_xent_forward", "softmax_xent_backward")),
    "linear": (_reference, ("linear_forward", "linear_backward")),
    "rnn_kernels": (_reference_rnn, ("rnn_forward", "rnn_backward")),
    "lstm_kernels": (_reference_rnn, ("lstm_forward", "lstm_backward")),
    "gru_kernels": (_reference_rnn, ("gru_forward", "gru_backward")),
}

# modules that also exist as <name>_avx512 (the same .pyx compiled with -march=x86-64-v4)
_AVX512_BUILDS = ("rnn_kernels", "lstm_kernels", "gru_kernels", "loss")

_compiled: dict[str, object] = {}
_import_error: Exception | None = None
_VARIANT = "portable"


def _avx512_module(module_name: str):
    """The AVX-512 build of a module when this CPU runs it and it was built, else None."""
    if module_name not in _AVX512_BUILDS or os.environ.get("MINIGRAD_AVX512") == "0":
        return None
    try:
        if not importlib.import_module("minigrad._ext.rnn_kernels").cpu_is_x86_64_v4():
            return None
        return importlib.import_module(f"minigrad._ext.{module_name}_avx512")
    except ImportError:  # not built on this platform
        return None


def _load_compiled() -> None:
    global _import_error, _VARIANT
    for module_name, (_twins, names) in _MODULES.items():
        try:
            module = importlib.import_module(f"minigrad._ext.{module_name}")
        except ImportError as exc:
            _import_error = exc
            _compiled.clear()
            return
        fast = _avx512_module(module_name)
        if fast is not None:
            module, _VARIANT = fast, "avx512"
        for name in names:
            _compiled[name] = getattr(module, name)


def variant() -> str:
    """'avx512' when the recurrent kernels run their AVX-512 build, else 'portable'."""
    return _VARIANT if _BACKEND == "compiled" else "numpy"


def _select(use_compiled: bool) -> None:
    for twins, names in _MODULES.values():
        for name in names:
            globals()[name] = _compiled[name] if use_compiled else getattr(twins, name)


def backend() -> str:
    """'compiled' when the Cython kernels are in use, 'numpy' when the numpy twins are."""
    return _BACKEND


def use(name: str) -> None:
    """Switch kernels at run time: 'compiled' or 'numpy' (used by tests and benchmarks)."""
    global _BACKEND
    if name == "compiled":
        if not _compiled:
            raise ImportError(f"minigrad: the compiled extension is not available "
                              f"({_import_error}); reinstall with `pip install .`")
        _select(True)
    elif name == "numpy":
        _select(False)
    else:
        raise ValueError(f"kernels.use: expected 'compiled' or 'numpy', got {name!r}")
    _BACKEND = name


_load_compiled()
if os.environ.get("MINIGRAD_BACKEND") == "numpy":
    _BACKEND = "numpy"
    _select(False)
elif _compiled:
    _BACKEND = "compiled"
    _select(True)
else:
    if os.environ.get("MINIGRAD_REQUIRE_EXT") == "1":
        raise ImportError(f"minigrad: MINIGRAD_REQUIRE_EXT=1 but the compiled extension could "
                          f"not be imported ({_import_error}); build it with `pip install .`")
    warnings.warn(f"minigrad: compiled kernels not available ({_import_error}); using the "
                  f"slower numpy reference kernels. Reinstall with `pip install .` to build them.",
                  RuntimeWarning, stacklevel=2)
    _BACKEND = "numpy"
    _select(False)

# after the compiled modules are loaded (they load scipy's BLAS): choose the BLAS thread count
from minigrad import threads as _threads  # noqa: E402

_threads.apply_default()

from minigrad import memory as _memory  # noqa: E402

_memory.tune_heap()
