# cython: language_level=3
"""Fused elementwise kernels (twins in minigrad/fast/_reference.py): sigmoid in one pass, the
backward of tanh and sigmoid, Adam's update in one pass over each parameter's four arrays, and
the sum of squares of many arrays (clip_grad_norm_); the last two take many parameters in one
call, split across the kernel workers."""
import numpy as np

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

from work_split cimport share

# one set of argument checks
from minigrad.fast._reference import (_check_adam, _check_adam_many, _check_float, _check_pair,
                                       _check_squares)
from minigrad.fast.threads import elementwise_workers

cnp.import_array()

cdef extern from "mg_elementwise.h" nogil:
    # the loops, one per dtype (the header says how each is compiled)
    void mg_sigmoid_f(const float* x, float* out, long n)
    void mg_sigmoid_d(const double* x, double* out, long n)
    void mg_tanh_backward_f(const float* y, const float* g, float* out, long n)
    void mg_tanh_backward_d(const double* y, const double* g, double* out, long n)
    void mg_sigmoid_backward_f(const float* y, const float* g, float* out, long n)
    void mg_sigmoid_backward_d(const double* y, const double* g, double* out, long n)
    # out = a OP b on an (M, N) grid (the header explains the rows and the one-value operands)
    void mg_add_f(const float*, long, int, const float*, long, int, float*, long, long)
    void mg_add_d(const double*, long, int, const double*, long, int, double*, long, long)
    void mg_sub_f(const float*, long, int, const float*, long, int, float*, long, long)
    void mg_sub_d(const double*, long, int, const double*, long, int, double*, long, long)
    void mg_mul_f(const float*, long, int, const float*, long, int, float*, long, long)
    void mg_mul_d(const double*, long, int, const double*, long, int, double*, long, long)
    void mg_div_f(const float*, long, int, const float*, long, int, float*, long, long)
    void mg_div_d(const double*, long, int, const double*, long, int, double*, long, long)

ctypedef void (*binary_f)(const float* a, long a_row, int a_one, const float* b, long b_row,
                          int b_one, float* out, long M, long N) noexcept nogil
ctypedef void (*binary_d)(const double* a, long a_row, int a_one, const double* b, long b_row,
                          int b_one, double* out, long M, long N) noexcept nogil


# Raw pointers rather than typed memoryviews in the three wrappers below: on the small arrays
# of a step-at-a-time graph, acquiring memoryviews costs more than the loop.

cdef inline bint _native_float(object a):
    # an ndarray of float32 or float64 in this machine's byte order
    return (isinstance(a, np.ndarray)
            and cnp.PyArray_TYPE(<cnp.ndarray>a) in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a))


def sigmoid(x):
    """1 / (1 + exp(-x)) for a float32 or float64 array, in a new C-contiguous array."""
    if not _native_float(x):
        _check_float("sigmoid", "x", x, np.ndim(x))  # raises, naming the op and the dtype
        raise ValueError(f"sigmoid: x must be float32 or float64 in this machine's byte "
                         f"order, got {x.dtype}")
    cdef cnp.ndarray xa = cnp.PyArray_GETCONTIGUOUS(x)
    cdef int num = cnp.PyArray_TYPE(xa)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), num, 0)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    with nogil:
        if num == cnp.NPY_FLOAT32:
            mg_sigmoid_f(<const float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(out), n)
        else:
            mg_sigmoid_d(<const double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(out), n)
    return out


cdef object _backward_rule(str name, object y, object grad, bint tanh):
    # the wrapper of the tanh and sigmoid rules: checks, a new output, the loop without the GIL
    if not (_native_float(y) and _native_float(grad)
            and cnp.PyArray_TYPE(<cnp.ndarray>y) == cnp.PyArray_TYPE(<cnp.ndarray>grad)
            and cnp.PyArray_SAMESHAPE(<cnp.ndarray>y, <cnp.ndarray>grad)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>y)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>grad)):
        _check_pair(name, y, grad)  # raises, naming the op, the dtypes or the shapes
        raise ValueError(f"{name}: y and grad must be float32 or float64 in this machine's "
                         f"byte order, got {y.dtype} and {grad.dtype}")
    cdef cnp.ndarray ya = <cnp.ndarray>y, ga = <cnp.ndarray>grad
    cdef int num = cnp.PyArray_TYPE(ya)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(ya), cnp.PyArray_DIMS(ya), num, 0)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(ya)
    cdef void* yp = cnp.PyArray_DATA(ya)
    cdef void* gp = cnp.PyArray_DATA(ga)
    cdef void* op = cnp.PyArray_DATA(out)
    with nogil:
        if num == cnp.NPY_FLOAT32:
            if tanh:
                mg_tanh_backward_f(<const float*>yp, <const float*>gp, <float*>op, n)
            else:
                mg_sigmoid_backward_f(<const float*>yp, <const float*>gp, <float*>op, n)
        elif tanh:
            mg_tanh_backward_d(<const double*>yp, <const double*>gp, <double*>op, n)
        else:
            mg_sigmoid_backward_d(<const double*>yp, <const double*>gp, <double*>op, n)
    return out


def tanh_backward(y, grad):
    """grad * (1 - y^2) for y = tanh(x)."""
    return _backward_rule("tanh_backward", y, grad, True)


def sigmoid_backward(y, grad):
    """grad * y * (1 - y) for y = sigmoid(x)."""
    return _backward_rule("sigmoid_backward", y, grad, False)


cdef void _adam_span(floating* p, const floating* g, floating* m, floating* v, Py_ssize_t lo,
                     Py_ssize_t hi, floating c1, floating beta2, floating c2, floating eps,
                     floating step_size, floating bc2_sqrt) noexcept nogil:
    # Elements [lo, hi) of one parameter. Every operation in the dtype of the arrays and in the
    # twin's order (the coefficients rounded to that dtype once, as numpy rounds a Python
    # float), so that the results are the twin's bit for bit.
    cdef Py_ssize_t i
    cdef floating d, den
    for i in range(lo, hi):
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


cdef void _adam_share(void** arrays, const Py_ssize_t* sizes, const double* step_sizes,
                      const double* bc2_sqrts, Py_ssize_t count, Py_ssize_t lo, Py_ssize_t hi,
                      floating c1, floating beta2, floating c2, floating eps) noexcept nogil:
    # elements [lo, hi) of the parameters laid end to end; arrays[4 k .. 4 k + 3] are
    # parameter k's (p, g, m, v)
    cdef Py_ssize_t k, start = 0, a, b
    for k in range(count):
        a, b = max(lo - start, 0), min(hi - start, sizes[k])
        if a < b:
            _adam_span(<floating*>arrays[4 * k], <const floating*>arrays[4 * k + 1],
                       <floating*>arrays[4 * k + 2], <floating*>arrays[4 * k + 3], a, b, c1,
                       beta2, c2, eps, <floating>step_sizes[k], <floating>bc2_sqrts[k])
        start += sizes[k]


cdef int _adam_run(void** arrays, const Py_ssize_t* sizes, const double* step_sizes,
                   const double* bc2_sqrts, Py_ssize_t count, Py_ssize_t total, floating c1,
                   floating beta2, floating c2, floating eps, int workers) except -1:
    cdef int w
    with nogil:
        for w in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            _adam_share(arrays, sizes, step_sizes, bc2_sqrts, count, share(total, w, workers),
                        share(total, w + 1, workers), c1, beta2, c2, eps)
    return 0


def adam_update_many(params, grads, exp_avgs, exp_avg_sqs, double beta1, double beta2,
                     double eps, step_sizes, bc2_sqrts):
    """adam_update on every parameter of the lists in one call (a "multi-tensor" step): the
    elements of all of them, laid end to end, are split across the kernel workers.
    step_sizes[k] and bc2_sqrts[k] are parameter k's step_size and bc2_sqrt."""
    _check_adam_many(params, grads, exp_avgs, exp_avg_sqs, step_sizes, bc2_sqrts)
    _adam_lists(params, grads, exp_avgs, exp_avg_sqs, beta1, beta2, eps, step_sizes, bc2_sqrts)


cdef _adam_lists(params, grads, exp_avgs, exp_avg_sqs, double beta1, double beta2, double eps,
                 step_sizes, bc2_sqrts):
    # the arrays were checked by the caller
    cdef Py_ssize_t count = len(params)
    if count == 0:
        return
    cdef double[::1] st = np.ascontiguousarray(step_sizes, np.float64)
    cdef double[::1] bc = np.ascontiguousarray(bc2_sqrts, np.float64)
    cdef Py_ssize_t[::1] sizes = np.empty(count, np.intp)
    # the arrays' data pointers, 4 per parameter (p, g, m, v), read while the GIL is held
    cdef Py_ssize_t[::1] ptrs = np.empty(4 * count, np.intp)
    cdef Py_ssize_t k, total = 0
    for k in range(count):
        sizes[k] = params[k].size
        total += sizes[k]
        for j, a in enumerate((params[k], grads[k], exp_avgs[k], exp_avg_sqs[k])):
            ptrs[4 * k + j] = <Py_ssize_t>cnp.PyArray_DATA(a)
    workers = elementwise_workers(total)
    if params[0].dtype == np.float32:
        _adam_run[float](<void**>&ptrs[0], &sizes[0], &st[0], &bc[0], count, total,
                         <float>(1 - beta1), <float>beta2, <float>(1 - beta2), <float>eps,
                         workers)
    else:
        _adam_run[double](<void**>&ptrs[0], &sizes[0], &st[0], &bc[0], count, total,
                          1 - beta1, beta2, 1 - beta2, eps, workers)


def adam_update(param, grad, exp_avg, exp_avg_sq, double beta1, double beta2, double eps,
                double step_size, double bc2_sqrt):
    """One Adam step in place on param, exp_avg and exp_avg_sq (all of grad's shape and dtype,
    C-contiguous); step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t)."""
    _check_adam(param, grad, exp_avg, exp_avg_sq)
    _adam_lists([param], [grad], [exp_avg], [exp_avg_sq], beta1, beta2, eps, [step_size],
                [bc2_sqrt])


cdef double _squares_span(const floating* x, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # sum of x[i]^2 for i in [lo, hi), in double; eight partial sums, so that the additions
    # do not wait on each other (and gcc can put them in vector registers)
    cdef double s[8]
    cdef Py_ssize_t i, j, n8 = lo + (hi - lo) // 8 * 8
    for j in range(8):
        s[j] = 0
    for i in range(lo, n8, 8):
        for j in range(8):
            s[j] += <double>x[i + j] * <double>x[i + j]
    for i in range(n8, hi):
        s[0] += <double>x[i] * <double>x[i]
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


cdef double _squares_share(void** arrays, const Py_ssize_t* sizes, Py_ssize_t count,
                           Py_ssize_t lo, Py_ssize_t hi, floating kind) noexcept nogil:
    # elements [lo, hi) of the arrays laid end to end (kind only selects the dtype)
    cdef Py_ssize_t k, start = 0, a, b
    cdef double total = 0
    for k in range(count):
        a, b = max(lo - start, 0), min(hi - start, sizes[k])
        if a < b:
            total += _squares_span(<const floating*>arrays[k], a, b)
        start += sizes[k]
    return total


cdef int _squares_run(void** arrays, const Py_ssize_t* sizes, Py_ssize_t count,
                      Py_ssize_t total, double* parts, floating kind, int workers) except -1:
    cdef int w
    with nogil:
        for w in prange(workers, num_threads=workers, schedule="static", chunksize=1):
            parts[w] = _squares_share(arrays, sizes, count, share(total, w, workers),
                                      share(total, w + 1, workers), kind)
    return 0


def sum_of_squares_many(arrays):
    """sum of x^2 over every element of every array, accumulated in float64: the squared
    2-norm of all of them together (clip_grad_norm_). One call takes C-contiguous arrays of
    one float dtype; their elements, laid end to end, are split across the kernel workers,
    and the workers' sums are added in worker order."""
    _check_squares(arrays)
    cdef Py_ssize_t count = len(arrays), k, total = 0
    if count == 0:
        return 0.0
    cdef Py_ssize_t[::1] sizes = np.empty(count, np.intp)
    cdef Py_ssize_t[::1] ptrs = np.empty(count, np.intp)  # data pointers, read with the GIL
    for k in range(count):
        sizes[k] = arrays[k].size
        total += sizes[k]
        ptrs[k] = <Py_ssize_t>cnp.PyArray_DATA(arrays[k])
    workers = elementwise_workers(total)
    cdef double[::1] parts = np.zeros(workers, np.float64)
    if arrays[0].dtype == np.float32:
        _squares_run[float](<void**>&ptrs[0], &sizes[0], count, total, &parts[0], 0, workers)
    else:
        _squares_run[double](<void**>&ptrs[0], &sizes[0], count, total, &parts[0], 0, workers)
    cdef double result = 0
    for k in range(workers):
        result += parts[k]
    return result


# ---- broadcast arithmetic -------------------------------------------------------------------
# add, sub, mul and div with numpy's meaning. The compiled loop takes the cases a graph of
# small ops is made of, where numpy's general broadcasting machinery costs more than the
# arithmetic: two C-contiguous arrays of one float dtype where the smaller one, against the
# larger one's shape, is the same shape, a row (its leading axes 1, the trailing ones equal:
# a bias), a column (the leading axes equal, the trailing ones 1: a per-row mean) or one value.
# Everything else (mixed dtypes, other broadcasts, 0-d, empty, strided arrays, ndarray
# subclasses) is numpy's.

cdef bint _rows(cnp.npy_intp* S, int D, int cut, Py_ssize_t row, int one, Py_ssize_t* M,
               Py_ssize_t* N, Py_ssize_t* small_row, int* small_one) noexcept:
    # the larger shape S as M = prod(S[:cut]) rows of N = prod(S[cut:]), and the smaller
    # operand's stride between rows and whether it is one value a row
    cdef int i
    M[0], N[0] = 1, 1
    for i in range(cut):
        M[0] *= S[i]
    for i in range(cut, D):
        N[0] *= S[i]
    small_row[0], small_one[0] = row, one
    return True


cdef bint _grid(cnp.ndarray big, cnp.ndarray small, Py_ssize_t* M, Py_ssize_t* N,
                Py_ssize_t* small_row, int* small_one):
    # small's shape against big's, small's axes aligned to the right; False when it is none
    # of the four cases
    cdef int D = cnp.PyArray_NDIM(big), d = cnp.PyArray_NDIM(small), off = D - d, i, k, j
    cdef cnp.npy_intp* S = cnp.PyArray_DIMS(big)
    cdef cnp.npy_intp* s = cnp.PyArray_DIMS(small)
    if d > D:
        return False
    # k: small's first axis longer than 1 (aligned to big's), j: one past its last
    k, j = D, off
    for i in range(off, D):
        if s[i - off] != 1:
            if k == D:
                k = i
            j = i + 1
    if k == D:  # one value: one row of all the elements
        return _rows(S, D, 0, 0, 1, M, N, small_row, small_one)
    for i in range(k, D):  # a row (the same shape when k = 0): small[n] for every m
        if s[i - off] != S[i]:
            break
    else:
        return _rows(S, D, k, 0, 0, M, N, small_row, small_one)
    if off > 0:  # small lacks leading axes (they are broadcast too): not a column
        return False
    for i in range(j):  # a column: small[m] for every n
        if s[i] != S[i]:
            return False
    return _rows(S, D, j, 1, 1, M, N, small_row, small_one)


cdef struct Plan:
    # a OP b as M rows of N: each operand's stride between rows and whether it is one value
    # per row (then N copies of it)
    Py_ssize_t M, N, a_row, b_row
    int a_one, b_one


cdef object _plan(object a, object b, Plan* p):
    # the larger operand (its shape is the result's) when the compiled loop takes a OP b,
    # else None. Plain ndarrays only: a subclass has its own operators (np.matrix's * is a
    # matrix product, a masked array's skips masked elements)
    if not (type(a) is np.ndarray and type(b) is np.ndarray
            and _native_float(a) and _native_float(b)):
        return None
    cdef cnp.ndarray x = <cnp.ndarray>a, y = <cnp.ndarray>b
    if (cnp.PyArray_TYPE(x) != cnp.PyArray_TYPE(y) or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or not cnp.PyArray_IS_C_CONTIGUOUS(y)):
        return None
    cdef bint a_big = (cnp.PyArray_NDIM(x) > cnp.PyArray_NDIM(y)
                       or (cnp.PyArray_NDIM(x) == cnp.PyArray_NDIM(y)
                           and cnp.PyArray_SIZE(x) >= cnp.PyArray_SIZE(y)))
    cdef cnp.ndarray big = x if a_big else y
    cdef Py_ssize_t small_row
    cdef int small_one
    if (cnp.PyArray_NDIM(big) == 0 or cnp.PyArray_SIZE(big) == 0
            or not _grid(big, y if a_big else x, &p.M, &p.N, &small_row, &small_one)):
        return None
    if a_big:
        p.a_row, p.a_one, p.b_row, p.b_one = p.N, 0, small_row, small_one
    else:
        p.a_row, p.a_one, p.b_row, p.b_one = small_row, small_one, p.N, 0
    return big


cdef object _binary(object a, object b, binary_f loop_f, binary_d loop_d):
    # the compiled loop when it takes a OP b (see above), else None
    cdef Plan p
    big = _plan(a, b, &p)
    if big is None:
        return None
    cdef int num = cnp.PyArray_TYPE(<cnp.ndarray>big)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(<cnp.ndarray>big),
                                             cnp.PyArray_DIMS(<cnp.ndarray>big), num, 0)
    cdef void* ap = cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef void* bp = cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef void* op = cnp.PyArray_DATA(out)
    with nogil:
        if num == cnp.NPY_FLOAT32:
            loop_f(<const float*>ap, p.a_row, p.a_one, <const float*>bp, p.b_row, p.b_one,
                   <float*>op, p.M, p.N)
        else:
            loop_d(<const double*>ap, p.a_row, p.a_one, <const double*>bp, p.b_row, p.b_one,
                   <double*>op, p.M, p.N)
    return out


def broadcast_case(a, b):
    """Which case of the compiled loop a OP b takes: 'same' (shape), 'row', 'column' or 'one'
    (value), the smaller operand against the larger; None when numpy computes it (for tests)."""
    cdef Plan p
    if _plan(a, b, &p) is None:
        return None
    if p.a_one or p.b_one:
        return "column" if p.M > 1 else "one"
    return "row" if p.M > 1 else "same"


def add(a, b):
    """a + b, as numpy computes it (compiled for the common float cases, see above)."""
    out = _binary(a, b, mg_add_f, mg_add_d)
    return a + b if out is None else out


def sub(a, b):
    """a - b, as numpy computes it."""
    out = _binary(a, b, mg_sub_f, mg_sub_d)
    return a - b if out is None else out


def mul(a, b):
    """a * b, as numpy computes it."""
    out = _binary(a, b, mg_mul_f, mg_mul_d)
    return a * b if out is None else out


def div(a, b):
    """a / b, as numpy computes it."""
    out = _binary(a, b, mg_div_f, mg_div_d)
    return a / b if out is None else out
