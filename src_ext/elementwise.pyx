# cython: language_level=3
"""Fused elementwise backward kernels for tanh and sigmoid (twins in minigrad/_reference.py)."""
import numpy as np

from cython cimport floating


cdef void _tanh_backward(const floating[::1] y, const floating[::1] g,
                         floating[::1] out) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(y.shape[0]):
        # (1) dy/dx = 1 - y^2   (2) dx = grad * (1 - y^2)
        out[i] = g[i] * (1 - y[i] * y[i])


cdef void _sigmoid_backward(const floating[::1] y, const floating[::1] g,
                            floating[::1] out) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(y.shape[0]):
        # (1) dy/dx = y (1 - y)   (2) dx = grad * y (1 - y)
        out[i] = g[i] * y[i] * (1 - y[i])


def _check_pair(name, y, g):
    if not isinstance(y, np.ndarray) or not isinstance(g, np.ndarray):
        raise ValueError(f"{name}: expected ndarrays, got {type(y).__name__} and "
                         f"{type(g).__name__}")
    if y.dtype != g.dtype or y.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: y and grad must share dtype float32 or float64, got "
                         f"{y.dtype} and {g.dtype}")
    if y.shape != g.shape:
        raise ValueError(f"{name}: y has shape {y.shape} but grad has shape {g.shape}")
    if not (y.flags.c_contiguous and g.flags.c_contiguous):
        raise ValueError(f"{name}: y and grad must be C-contiguous (shapes {y.shape}, {g.shape})")


def tanh_backward(y, grad):
    """grad * (1 - y^2) for y = tanh(x)."""
    _check_pair("tanh_backward", y, grad)
    out = np.empty_like(y)
    cdef const float[::1] yf, gf
    cdef const double[::1] yd, gd
    cdef float[::1] of
    cdef double[::1] od
    if y.dtype == np.float32:
        yf, gf, of = y.reshape(-1), grad.reshape(-1), out.reshape(-1)
        with nogil:
            _tanh_backward(yf, gf, of)
    else:
        yd, gd, od = y.reshape(-1), grad.reshape(-1), out.reshape(-1)
        with nogil:
            _tanh_backward(yd, gd, od)
    return out


def sigmoid_backward(y, grad):
    """grad * y * (1 - y) for y = sigmoid(x)."""
    _check_pair("sigmoid_backward", y, grad)
    out = np.empty_like(y)
    cdef const float[::1] yf, gf
    cdef const double[::1] yd, gd
    cdef float[::1] of
    cdef double[::1] od
    if y.dtype == np.float32:
        yf, gf, of = y.reshape(-1), grad.reshape(-1), out.reshape(-1)
        with nogil:
            _sigmoid_backward(yf, gf, of)
    else:
        yd, gd, od = y.reshape(-1), grad.reshape(-1), out.reshape(-1)
        with nogil:
            _sigmoid_backward(yd, gd, od)
    return out
