# cython: language_level=3
"""Embedding backward: scatter-add gradient rows into the weight's rows (twin in
minigrad/fast/_reference.py, derivation steps numbered identically)."""
import numpy as np

from cython cimport floating

from minigrad.fast._reference import _check_embedding  # one set of argument checks


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
    _check_embedding("embedding_backward", indices, grad, num_embeddings)
    if not indices.flags.c_contiguous:
        raise ValueError(f"embedding_backward: indices of shape {indices.shape} must be "
                         f"C-contiguous")
    cdef const long long[::1] idx = indices
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
