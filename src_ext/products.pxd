# cython: language_level=3
"""Matrix products for the compiled kernels (rnn_common.pxd, linear.pyx), as inline helpers.

Row-major products through scipy's BLAS: scipy.linalg.cython_blas is column-major, and a
row-major (m, n) matrix is the column-major (n, m) matrix, so C = A @ B^T is computed as the
column-major C^T = B A^T. For float32, the tiles of mg_gemm.h: on AVX-512 or AVX2 CPUs the
recurrent kernels' per-step product with W_hh packed once per sequence (packed_weights,
step_product), and on AVX-512 CPUs the gradient products read in place (input_gradient,
weight_gradient). The nogil helpers
are marked so; packed_weights, packed_gemm_enabled and _aligned_floats run with the GIL."""
from cython cimport floating
from libc.stdlib cimport getenv
from libc.string cimport strcmp
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv

cimport numpy as cnp

cdef extern from "mg_gemm.h" nogil:
    # float32 products with W_hh packed once per sequence (see the header for why and how)
    long mg_packed_b_size(int K, int N)
    void mg_pack_bt(int N, int K, const float* w, float* bp)
    void mg_pack_bn(int K, int N, const float* w, float* bp)
    void mg_gemm_packed(int M, int N, int K, const float* a, int lda, const float* bp,
                        float* c, int ldc, int accumulate)
    void mg_gemm_nn(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                    float* c, int ldc, int accumulate)
    void mg_gemm_tn(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                    float* c, int ldc)
    int mg_gemm_tn_suits(int M, int N)
    int mg_gemm_nn_suits(int K, int N)
    int mg_packed_gemm_available()
    int mg_packed_step_available()


cdef inline void _gemm(char* ta, char* tb, int m, int n, int k, floating alpha,
                       const floating* a, int lda, const floating* b, int ldb, floating beta,
                       floating* c, int ldc) noexcept nogil:
    # column-major BLAS; the pointers come from checked, C-contiguous typed memoryviews
    if floating is float:
        sgemm(ta, tb, &m, &n, &k, &alpha, <float*>a, &lda, <float*>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(ta, tb, &m, &n, &k, &alpha, <double*>a, &lda, <double*>b, &ldb, &beta, c, &ldc)


cdef inline void _gemv(char* trans, int m, int n, const floating* a, int lda,
                       const floating* x, floating beta, floating* y) noexcept nogil:
    # column-major y = op(A) x + beta y, A (m, n) with leading dimension lda
    cdef int one = 1
    cdef floating alpha = 1
    if floating is float:
        sgemv(trans, &m, &n, &alpha, <float*>a, &lda, <float*>x, &one, &beta, y, &one)
    else:
        dgemv(trans, &m, &n, &alpha, <double*>a, &lda, <double*>x, &one, &beta, y, &one)


cdef inline void matmul_nt(int m, int n, int k, const floating* a, const floating* b,
                           floating beta, floating* c) noexcept nogil:
    """C (m, n) = A (m, k) @ B (n, k)^T + beta * C, all row-major and contiguous. One row of A
    (a generated token, batch 1) is a matrix-vector product: gemv, which reads B once with no
    packing."""
    if m == 1:
        _gemv(b"T", k, n, b, k, a, beta, c)
    else:
        _gemm(b"T", b"N", n, m, k, <floating>1, b, k, a, k, beta, c, n)


cdef inline void matmul_nn(int m, int n, int k, const floating* a, const floating* b,
                           floating beta, floating* c) noexcept nogil:
    """C (m, n) = A (m, k) @ B (k, n) + beta * C, all row-major and contiguous (one row of A:
    gemv, as matmul_nt)."""
    if m == 1:
        _gemv(b"N", n, k, b, n, a, beta, c)
    else:
        _gemm(b"N", b"N", n, m, k, <floating>1, b, n, a, k, beta, c, n)


cdef inline void matmul_tn(int m, int n, int k, const floating* a, int lda,
                           const floating* b, floating beta, floating* c) noexcept nogil:
    """C (m, n) = A (k, m)^T @ B (k, n) + beta * C, all row-major; A's rows are ``lda`` apart
    (lda = m for a contiguous A; more when A is a column block of a wider matrix)."""
    _gemm(b"N", b"T", n, m, k, <floating>1, b, n, a, lda, beta, c, n)


cdef inline void input_gradient(int m, int n, int k, const floating* a, const floating* b,
                                floating* c, bint tile) noexcept nogil:
    """C (m, n) = A (m, k) @ B (k, n), all contiguous: an input gradient dX = dG W. float32 with
    ``tile`` and shapes that suit it (mg_gemm_nn_suits: whole panels, a small B): the AVX-512
    tile, reading A and B in place (mg_gemm_nn); otherwise BLAS."""
    if floating is float:
        if tile and mg_gemm_nn_suits(k, n):
            mg_gemm_nn(m, n, k, <const float*>a, k, <const float*>b, n, c, n, 0)
            return
    matmul_nn(m, n, k, a, b, 0, c)


cdef inline void weight_gradient(int m, int n, int k, const floating* a, int lda,
                                 const floating* b, floating* c, bint tile) noexcept nogil:
    """C (m, n) = A (k, m)^T @ B (k, n), A's rows lda apart, B and C contiguous: a weight
    gradient dW = dG^T X. float32 with ``tile`` (the AVX-512 tile can run) and shapes that suit
    it (mg_gemm_tn_suits: whole tiles, blocks within L2): the tile, reading A and B in place
    (mg_gemm_tn), and BLAS for the last m % 8 rows; otherwise BLAS, which first copies both into
    its own panels."""
    cdef int whole = m - m % 8
    if floating is float:
        if tile and whole and mg_gemm_tn_suits(whole, n):
            mg_gemm_tn(whole, n, k, <const float*>a, lda, <const float*>b, n, c, n)
            if whole < m:
                matmul_tn(m - whole, n, k, a + whole, lda, b, 0, c + whole * n)
            return
    matmul_tn(m, n, k, a, lda, b, 0, c)


cdef inline void step_product(bint w_transposed, int m, int n, int k, const floating* a,
                              const floating* w, const float* w_packed, floating beta,
                              floating* c) noexcept nogil:
    """The per-step product C (m, n) = A (m, k) @ op(W) + beta * C, beta 0 or 1, where op(W) is
    W^T for a W of (n, k) (the forward h W_hh^T) or W for a W of (k, n) (the backward dG W_hh).

    float32 with w_packed (W packed by packed_weights(w, w_transposed)): the AVX-512 or AVX2
    tile, which reads A's rows in place, each row of C the same whatever rows share the call
    (mg_gemm.h); otherwise BLAS."""
    if floating is float:
        if w_packed != NULL:
            mg_gemm_packed(m, n, k, <const float*>a, k, w_packed, c, n, beta != 0)
            return
    if w_transposed:
        matmul_nt(m, n, k, a, w, beta, c)
    else:
        matmul_nn(m, n, k, a, w, beta, c)


cdef inline object _aligned_floats(Py_ssize_t n):
    """A float32 array of n elements starting on a 64-byte boundary (one cache line)."""
    import numpy as np
    buf = np.empty(n + 16, np.float32)
    # the address read in C (arr.ctypes builds a Python object: microseconds per call);
    # unsigned arithmetic, so % is never negative
    cdef size_t floats_in = (<size_t>cnp.PyArray_DATA(buf)) // 4
    start = (16 - floats_in % 16) % 16
    return buf[start:start + n]


cdef inline bint packed_gemm_enabled():
    """The CPU has AVX-512 (the packed tile can run) and MINIGRAD_AVX512 is not 0."""
    # getenv sees what os.environ sets (Python passes it on to the C environment)
    cdef const char* flag = getenv("MINIGRAD_AVX512")
    return mg_packed_gemm_available() and (flag == NULL or strcmp(flag, "0") != 0)


cdef inline object packed_weights(object w_hh, bint transposed, Py_ssize_t steps):
    """W_hh packed for the ``steps`` step products of a float32 layer when a packed tile can
    run here (AVX-512, or AVX2 with FMA; MINIGRAD_PACKED=0 turns both off, MINIGRAD_AVX512=0
    the AVX-512 one: mg_gemm.h's mg_packed_kind) and pays: more than one step (packing
    reads all of W_hh and writes it again, which one step's product would do once: a one-step
    call, as when generating a token at a time, goes straight to BLAS); else an empty array,
    and the loops call BLAS (packed_or_null).

    transposed: pack B = W_hh^T for the forward h W_hh^T (K = H), else B = W_hh for the
    backward dG W_hh (K = G*H)."""
    import numpy as np
    cdef int GH = w_hh.shape[0], H = w_hh.shape[1]
    cdef int K = H if transposed else GH, N = GH if transposed else H
    if (w_hh.dtype != np.float32 or K == 0 or N == 0 or steps < 2
            or not mg_packed_step_available()):
        return np.zeros(0, np.float32)
    packed = _aligned_floats(mg_packed_b_size(K, N))
    cdef const float[:, ::1] w = w_hh
    cdef float[::1] b = packed
    if transposed:
        mg_pack_bt(N, K, &w[0, 0], &b[0])
    else:
        mg_pack_bn(K, N, &w[0, 0], &b[0])
    return packed


cdef inline const float* packed_or_null(const float[::1] w_packed) noexcept nogil:
    """The packed W_hh for step_product, or NULL when packed_weights left it empty (the
    products then call BLAS)."""
    return &w_packed[0] if w_packed.shape[0] else NULL
