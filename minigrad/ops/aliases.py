"""Keyword aliases shared by every function and method that takes an axis.

PyTorch spells the axis ``dim=`` and the keep-the-axis flag ``keepdim=``; numpy spells them
``axis=`` and ``keepdims=`` (and the variance's divisor correction ``correction=`` / ``ddof=``).
``axis_aliases`` lets a function declare one spelling and accept the other as the same argument.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

# (PyTorch's name, numpy's name): the same argument under two spellings
PAIRS = (("dim", "axis"), ("keepdim", "keepdims"), ("correction", "ddof"))

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def axis_aliases(fn: Callable) -> Callable:
    """Decorator: ``fn`` declares one name of each pair in ``PAIRS`` and also accepts the other.

    A function that declares both names of a pair (``Tensor.max``, whose result depends on the
    spelling) receives them as given. Passing both spellings of one argument, or a keyword that
    ``fn`` does not take, raises ``TypeError`` naming the accepted keywords."""
    params = inspect.signature(fn).parameters
    declared = frozenset(n for n, p in params.items() if p.kind in _NAMED)
    rename: dict[str, str] = {}          # alias -> the name fn declares
    both: list[tuple[str, str]] = []     # pairs fn declares under both names
    for torch_name, numpy_name in PAIRS:
        if torch_name in declared and numpy_name in declared:
            both.append((torch_name, numpy_name))
        elif torch_name in declared:
            rename[numpy_name] = torch_name
        elif numpy_name in declared:
            rename[torch_name] = numpy_name
    accepted = ", ".join(f"{n}= (or {alias}=)" if alias else f"{n}="
                         for n in params if n in declared and n != "self"
                         for alias in [next((a for a, d in rename.items() if d == n), None)])
    name = fn.__name__

    def resolve(kwargs: dict) -> dict:
        out = {}
        for key, value in kwargs.items():
            target = rename.get(key, key)
            if target not in declared:
                raise TypeError(f"{name}(): unexpected keyword argument {key!r}; "
                                f"accepted keywords: {accepted}")
            if target in out or target != key and target in kwargs:
                raise TypeError(f"{name}(): {key}= and {target}= are the same argument; "
                                f"pass one of them")
            out[target] = value
        for a, b in both:
            if a in out and b in out:
                raise TypeError(f"{name}(): {a}= and {b}= are the same argument; pass one "
                                f"of them")
        return out

    check_both = bool(both)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs and (check_both or not declared.issuperset(kwargs)):
            kwargs = resolve(kwargs)
        return fn(*args, **kwargs)

    return wrapper
