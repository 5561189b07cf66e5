/* The elementwise loops of the step-at-a-time ops (elementwise.pyx): sigmoid in one pass, and
 * the backward rules of tanh and sigmoid. restrict: inputs and output never overlap, so each
 * loop vectorises.
 *
 * MG_CLONES: on x86-64 Linux with gcc, each loop is compiled twice, for the baseline
 * (SSE2, 4 floats a vector) and for AVX2 (8), and the loader picks the one this CPU runs
 * (an ifunc, resolved once). No FMA in either: both round every product and sum the same way,
 * so the CPU does not change the results. */
#ifndef MG_ELEMENTWISE_H
#define MG_ELEMENTWISE_H

#include "mg_math.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MG_CLONES
#endif

/* 1 / (1 + exp(-x)); 0 below -88 (float) / -708 (double), where exp(-x) would leave the range
 * (the exact value rounds to 0 there, as torch gives); nan stays nan. */
MG_CLONES static void mg_sigmoid_f(const float* restrict x, float* restrict out, long n) {
    for (long i = 0; i < n; i++)
        out[i] = (float)(x[i] >= -88.0f) * (1.0f / (1.0f + mg_expf(-x[i])));
}
MG_CLONES static void mg_sigmoid_d(const double* restrict x, double* restrict out, long n) {
    for (long i = 0; i < n; i++)
        out[i] = (double)(x[i] >= -708.0) * (1.0 / (1.0 + mg_exp(-x[i])));
}

/* tanh: (1) dy/dx = 1 - y^2   (2) dx = grad * (1 - y^2) */
MG_CLONES static void mg_tanh_backward_f(const float* restrict y, const float* restrict g,
                                         float* restrict out, long n) {
    for (long i = 0; i < n; i++)
        out[i] = g[i] * (1.0f - y[i] * y[i]);
}
MG_CLONES static void mg_tanh_backward_d(const double* restrict y, const double* restrict g,
                                         double* restrict out, long n) {
    for (long i = 0; i < n; i++)
        out[i] = g[i] * (1.0 - y[i] * y[i]);
}

/* sigmoid: (1) dy/dx = y (1 - y)   (2) dx = grad * y (1 - y) */
MG_CLONES static void mg_sigmoid_backward_f(const float* restrict y, const float* restrict g,
                                            float* restrict out, long n) {
    for (long i = 0; i < n; i++)
        out[i] = g[i] * y[i] * (1.0f - y[i]);
}
MG_CLONES static void mg_sigmoid_backward_d(const double* restrict y, const double* restrict g,
                                            double* restrict out, long n) {
    for (long i = 0; i < n; i++)
        out[i] = g[i] * y[i] * (1.0 - y[i]);
}
/* Broadcast arithmetic (add, sub, mul, div) on an (M, N) grid: out[m, n] = a OP b, where each
 * operand is either a whole (M, N) array, a row of N shared by every m (row stride 0), or one
 * value per m (a column: N copies of it). Each of a and b is given as its data, its stride
 * between rows (N, 0 or 1) and whether it is one value per row. One correctly rounded IEEE
 * operation per element, no FMA: the bits numpy's `a OP b` gives. */
#define MG_BINARY(NAME, T, OP)                                                               \
MG_CLONES static void NAME(const T* a, long a_row, int a_one, const T* b, long b_row,        \
                           int b_one, T* restrict out, long M, long N) {                     \
    for (long m = 0; m < M; m++) {                                                           \
        const T* restrict x = a + m * a_row;                                                 \
        const T* restrict y = b + m * b_row;                                                 \
        T* restrict o = out + m * N;                                                         \
        if (a_one) {                                                                         \
            const T s = x[0];                                                                \
            for (long n = 0; n < N; n++) o[n] = s OP y[n];                                   \
        } else if (b_one) {                                                                  \
            const T s = y[0];                                                                \
            for (long n = 0; n < N; n++) o[n] = x[n] OP s;                                   \
        } else {                                                                             \
            for (long n = 0; n < N; n++) o[n] = x[n] OP y[n];                                \
        }                                                                                    \
    }                                                                                        \
}
MG_BINARY(mg_add_f, float, +)
MG_BINARY(mg_add_d, double, +)
MG_BINARY(mg_sub_f, float, -)
MG_BINARY(mg_sub_d, double, -)
MG_BINARY(mg_mul_f, float, *)
MG_BINARY(mg_mul_d, double, *)
MG_BINARY(mg_div_f, float, /)
MG_BINARY(mg_div_d, double, /)
#undef MG_BINARY
#endif
