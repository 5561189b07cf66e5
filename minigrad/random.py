"""minigrad's default random generator (weights' initial values, dropout masks).

One numpy ``Generator`` for the whole process; ``manual_seed(seed)`` resets it (as
``torch.manual_seed``), so one call makes a whole run repeatable. Anything that takes
``rng=`` resolves it with ``resolve_rng``: None draws from the default generator, an int seeds
a generator of its own, a Generator is used as is.
"""
from __future__ import annotations

from typing import Any

import numpy as np

_DEFAULT_RNG = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator to ``seed``; returns it."""
    _DEFAULT_RNG.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    return _DEFAULT_RNG


def default_generator() -> np.random.Generator:
    """The generator used whenever ``rng=None``."""
    return _DEFAULT_RNG


def resolve_rng(rng: Any = None, owner: str = "rng") -> np.random.Generator:
    """The one place that turns an ``rng=`` argument into a Generator: None gives the default
    generator (the one ``manual_seed`` resets), an int seeds a new Generator, a Generator is
    used as is. Anything else is a TypeError naming ``owner`` (the layer or function)."""
    if rng is None:
        return _DEFAULT_RNG
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{owner}: an int seed must be >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{owner}: rng must be None, an int seed or a numpy.random.Generator, got "
                    f"{type(rng).__name__}")


def get_rng_state() -> dict:
    """The default generator's state: a dict of ints and strings that ``minigrad.save`` writes."""
    return _DEFAULT_RNG.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state from ``get_rng_state`` (for an exact resume)."""
    _DEFAULT_RNG.bit_generator.state = state
