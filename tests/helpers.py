"""Small helpers shared by the test modules (hypothesis strategies live in strategies.py)."""
import contextlib


@contextlib.contextmanager
def swapped(module, names, tensors):
    """Run the module with the given tensors in place of its parameters (for gradcheck)."""
    old = [getattr(module, n) for n in names]
    for n, t in zip(names, tensors):
        object.__setattr__(module, n, t)
    try:
        yield
    finally:
        for n, o in zip(names, old):
            object.__setattr__(module, n, o)
