"""Module-level forms of Tensor methods, for code written as ``torch.tanh(x)``,
``torch.argmax(x, dim=1)`` or ``torch.sum(x, 0)``: ``minigrad.name(input, ...)`` is
``input.name(...)`` (a non-tensor input is made a Tensor first), with the method's arguments,
docstring and ``dim=``/``axis=`` aliases.

Names that are also Python builtins (``abs``, ``max``, ``min``, ``sum``, ``all``, ``any``)
are attributes of ``minigrad`` but are kept out of ``minigrad.__all__``, so that
``from minigrad import *`` never replaces the builtins."""
from __future__ import annotations

from typing import Any, Callable

from minigrad.tensor import Tensor

NAMES = ("abs", "sqrt", "exp", "log", "tanh", "sigmoid", "relu", "clamp", "clip", "sum",
         "mean", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std", "norm",
         "cumsum", "softmax", "log_softmax", "topk", "all", "any", "unsqueeze", "squeeze",
         "flatten", "permute", "transpose", "reshape", "gather", "masked_fill", "index_select")
BUILTIN_NAMES = ("abs", "max", "min", "sum", "all", "any")


def _form(name: str) -> Callable:
    def fn(input: Any, *args: Any, **kwargs: Any) -> Any:
        x = input if isinstance(input, Tensor) else Tensor(input)
        return getattr(x, name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = "minigrad"
    fn.__doc__ = (f"``minigrad.{name}(input, ...)`` is ``input.{name}(...)`` (as "
                  f"``torch.{name}``):\n\n{getattr(Tensor, name).__doc__}")
    return fn


FORMS = {name: _form(name) for name in NAMES}


def pow(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent`` (``torch.pow``): either may be a tensor or a number; a tensor
    exponent gets a gradient too (a^b log a)."""
    if isinstance(input, Tensor):
        return input ** exponent
    if isinstance(exponent, Tensor):
        return exponent.__rpow__(input)
    return Tensor(input) ** exponent

