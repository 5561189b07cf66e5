# cython: language_level=3
"""Embedding backward: scatter-add gradient rows into the weight's rows (twin in
minigrad/_reference.py, derivation steps numbered identically)."""
import numpy as np

from cython cimport floating


cdef Py_ssize_t _first_bad_index(const long long[::1] indices,
                                 long long num_embeddings) noexcept nogil:
    """Position of the first index outside [0, num_embeddings), else -1."""
    cdef Py_ssize_t i
    for i in range(indices.shape[0]):
        if indices[i] < 0 or indices[i] >= num_embeddings:
            return i
    return -1


cdef void _embedding_backward(const long long[::1] indices, const floating[:, ::1] grad,
                              floating[:, ::1] dweight) noexcept nogil:
    cdef Py_ssize_t n, d, k, dim = grad.shape[1]
    for n in range(indices.shape[0]):
        # (1) out[n, d] = W[idx[n], d]  =>  dW[k, d] = sum over n with idx[n] == k of grad[n, d]
        # (2) repeated indices accumulate (never overwrite).
        k = indices[n]
        for d in range(dim):
            dweight[k, d] += grad[n, d]


def embedding_backward(indices, grad, long long num_embeddings):
    """(num_embeddings, D) gradient of the weight for out = weight[indices]."""
    name = "embedding_backward"
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64 or indices.ndim != 1:
        raise ValueError(f"{name}: indices must be a 1-D int64 ndarray, got "
                         f"{getattr(indices, 'dtype', type(indices).__name__)} with shape "
                         f"{getattr(indices, 'shape', None)}")
    if not isinstance(grad, np.ndarray) or grad.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: grad must be a float32 or float64 ndarray, got "
                         f"{getattr(grad, 'dtype', type(grad).__name__)}")
    if grad.ndim != 2:
        raise ValueError(f"{name}: grad must be 2-D, got shape {grad.shape}")
    if not grad.flags.c_contiguous:
        raise ValueError(f"{name}: grad of shape {grad.shape} must be C-contiguous")
    if grad.shape[0] != indices.shape[0]:
        raise ValueError(f"{name}: grad has shape {grad.shape} but indices has shape "
                         f"{indices.shape} (need grad (N, D) with N = len(indices))")
    if not indices.flags.c_contiguous:
        raise ValueError(f"{name}: indices of shape {indices.shape} must be C-contiguous")
    cdef const long long[::1] idx = indices
    cdef Py_ssize_t bad
    with nogil:
        bad = _first_bad_index(idx, num_embeddings)
    if bad >= 0:
        raise ValueError(f"{name}: index {int(indices[bad])} at position {bad} is out of range "
                         f"for num_embeddings={num_embeddings}")
    dweight = np.zeros((num_embeddings, grad.shape[1]), dtype=grad.dtype)
    cdef const float[:, ::1] gf
    cdef const double[:, ::1] gd
    cdef float[:, ::1] wf
    cdef double[:, ::1] wd
    if grad.dtype == np.float32:
        gf, wf = grad, dweight
        with nogil:
            _embedding_backward(idx, gf, wf)
    else:
        gd, wd = grad, dweight
        with nogil:
            _embedding_backward(idx, gd, wd)
    return dweight
