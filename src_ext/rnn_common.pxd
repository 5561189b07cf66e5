# cython: language_level=3
"""Inline helpers shared by rnn_kernels.pyx, lstm_kernels.pyx and gru_kernels.pyx.

Row-major matrix products through scipy's BLAS (scipy.linalg.cython_blas is column-major: a
row-major (m, n) matrix is the column-major (n, m) matrix, so C = A @ B^T is computed as the
column-major C^T = B A^T), and numerically stable activations. Everything here is nogil."""
from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void _gemm(char* ta, char* tb, int m, int n, int k, floating alpha,
                       const floating* a, int lda, const floating* b, int ldb, floating beta,
                       floating* c, int ldc) noexcept nogil:
    # column-major BLAS; the pointers come from checked, C-contiguous typed memoryviews
    if floating is float:
        sgemm(ta, tb, &m, &n, &k, &alpha, <float*>a, &lda, <float*>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(ta, tb, &m, &n, &k, &alpha, <double*>a, &lda, <double*>b, &ldb, &beta, c, &ldc)


cdef inline void matmul_nt(int m, int n, int k, const floating* a, const floating* b,
                           floating beta, floating* c) noexcept nogil:
    """C (m, n) = A (m, k) @ B (n, k)^T + beta * C, all row-major and contiguous."""
    _gemm(b"T", b"N", n, m, k, <floating>1, b, k, a, k, beta, c, n)


cdef inline void matmul_nn(int m, int n, int k, const floating* a, const floating* b,
                           floating beta, floating* c) noexcept nogil:
    """C (m, n) = A (m, k) @ B (k, n) + beta * C, all row-major and contiguous."""
    _gemm(b"N", b"N", n, m, k, <floating>1, b, n, a, k, beta, c, n)


cdef inline floating sigmoid(floating a) noexcept nogil:
    # stable for large |a|: only exp of non-positive numbers
    cdef floating e
    if floating is float:
        e = expf(-a if a >= 0 else a)
    else:
        e = exp(-a if a >= 0 else a)
    return 1 / (1 + e) if a >= 0 else e / (1 + e)


cdef inline floating tanh_(floating a) noexcept nogil:
    if floating is float:
        return tanhf(a)
    else:
        return tanh(a)
