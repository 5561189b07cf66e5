"""minigrad's default random generator (weights' initial values, dropout masks).

One numpy ``Generator`` for the whole process; ``manual_seed(seed)`` resets it (as
``torch.manual_seed``), so one call makes a whole run repeatable. Anything that takes
``rng=None`` draws from it.
"""
from __future__ import annotations

import numpy as np

_DEFAULT_RNG = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator to ``seed``; returns it."""
    _DEFAULT_RNG.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    return _DEFAULT_RNG


def default_generator() -> np.random.Generator:
    """The generator used whenever ``rng=None``."""
    return _DEFAULT_RNG


def resolve(rng: np.random.Generator | None) -> np.random.Generator:
    """``rng`` itself, or the default generator when it is None."""
    return _DEFAULT_RNG if rng is None else rng


def get_rng_state() -> dict:
    """The default generator's state: a dict of ints and strings that ``minigrad.save`` writes."""
    return _DEFAULT_RNG.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state from ``get_rng_state`` (for an exact resume)."""
    _DEFAULT_RNG.bit_generator.state = state
