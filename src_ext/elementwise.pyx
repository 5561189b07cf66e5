# cython: language_level=3
"""Fused elementwise kernels (twins in minigrad/_reference.py): the backward of tanh and
sigmoid, and Adam's update of one parameter in one pass over its four arrays."""
import numpy as np

from cython cimport floating
from libc.math cimport sqrt, sqrtf

from minigrad._reference import _check_adam, _check_pair  # one set of argument checks


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


cdef void _adam_update(floating[::1] p, const floating[::1] g, floating[::1] m,
                       floating[::1] v, floating c1, floating beta2, floating c2,
                       floating eps, floating step_size, floating bc2_sqrt) noexcept nogil:
    # Every operation in the dtype of the arrays and in the twin's order (the coefficients
    # rounded to that dtype once, as numpy rounds a Python float), so that the results are
    # the twin's bit for bit.
    cdef Py_ssize_t i
    cdef floating d, den
    for i in range(p.shape[0]):
        # (1) m = beta1 m + (1 - beta1) g, as m += (1 - beta1) (g - m)
        d = (g[i] - m[i]) * c1
        m[i] = m[i] + d
        # (2) v = beta2 v + (1 - beta2) g^2
        d = (g[i] * g[i]) * c2
        v[i] = v[i] * beta2 + d
        # (3) p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps), step_size = lr / bc1
        if floating is float:
            den = sqrtf(v[i])
        else:
            den = sqrt(v[i])
        den = den / bc2_sqrt + eps
        p[i] = p[i] - (m[i] / den) * step_size


def adam_update(param, grad, exp_avg, exp_avg_sq, double beta1, double beta2, double eps,
                double step_size, double bc2_sqrt):
    """One Adam step in place on param, exp_avg and exp_avg_sq (all of grad's shape and dtype,
    C-contiguous); step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t)."""
    _check_adam(param, grad, exp_avg, exp_avg_sq)
    cdef float[::1] pf, mf, vf
    cdef const float[::1] gf
    cdef double[::1] pd, md, vd
    cdef const double[::1] gd
    if param.dtype == np.float32:
        pf, gf, mf, vf = (a.reshape(-1) for a in (param, grad, exp_avg, exp_avg_sq))
        with nogil:
            _adam_update(pf, gf, mf, vf, <float>(1 - beta1), <float>beta2, <float>(1 - beta2),
                         <float>eps, <float>step_size, <float>bc2_sqrt)
    else:
        pd, gd, md, vd = (a.reshape(-1) for a in (param, grad, exp_avg, exp_avg_sq))
        with nogil:
            _adam_update(pd, gd, md, vd, 1 - beta1, beta2, 1 - beta2, eps, step_size, bc2_sqrt)
