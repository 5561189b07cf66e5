# cython: language_level=3
"""How the compiled kernels split n items (batch rows, elements) across their workers."""


cdef inline Py_ssize_t share(Py_ssize_t n, Py_ssize_t w, Py_ssize_t workers) noexcept nogil:
    """First index of worker w's share when n items are split into ``workers`` contiguous,
    near-equal parts: worker w owns [share(n, w, workers), share(n, w + 1, workers))."""
    return n * w // workers
