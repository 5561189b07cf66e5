/* exp without branches or library calls, so that loops calling it vectorise (-O3):
 * x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite split of ln2), exp(r) by a polynomial
 * (Cephes' coefficients for float, Taylor to r^13 for double), 2^n from the exponent bits.
 * Inputs are clamped to the range where 2^n is a normal number, with bit masks rather than a
 * ?: on floats (which gcc will not turn into vector code). Used through rnn_common.pxd
 * (exp_, sigmoid, tanh_), by the row loops of mg_lstm_rows.h and by the sigmoid op
 * (mg_elementwise.h). */
#ifndef MG_MATH_H
#define MG_MATH_H

#include <stdint.h>
static inline float mg_clampf(float x, float lo, float hi) {
    union { float f; int32_t i; } a, l, h;
    int32_t m;
    a.f = x; l.f = lo; h.f = hi;
    m = -(int32_t)(x < lo); a.i = (a.i & ~m) | (l.i & m);
    m = -(int32_t)(a.f > hi); a.i = (a.i & ~m) | (h.i & m);
    return a.f;
}
static inline double mg_clamp(double x, double lo, double hi) {
    union { double f; int64_t i; } a, l, h;
    int64_t m;
    a.f = x; l.f = lo; h.f = hi;
    m = -(int64_t)(x < lo); a.i = (a.i & ~m) | (l.i & m);
    m = -(int64_t)(a.f > hi); a.i = (a.i & ~m) | (h.i & m);
    return a.f;
}
static inline float mg_expf(float x) {
    union { int32_t i; float f; } p;
    float n, r, y;
    x = mg_clampf(x, -87.0f, 88.0f);
    n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round(x / ln2) */
    r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    p.i = ((int32_t)n + 127) << 23;
    return y * p.f;
}
static inline double mg_exp(double x) {
    union { int64_t i; double f; } p;
    double n, r, y;
    x = mg_clamp(x, -708.0, 709.0);
    n = (x * 1.4426950408889634074 + 6755399441055744.0) - 6755399441055744.0;
    r = (x - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6;
    y = 1.0 / 6227020800.0;
    y = y * r + 1.0 / 479001600.0;
    y = y * r + 1.0 / 39916800.0;
    y = y * r + 1.0 / 3628800.0;
    y = y * r + 1.0 / 362880.0;
    y = y * r + 1.0 / 40320.0;
    y = y * r + 1.0 / 5040.0;
    y = y * r + 1.0 / 720.0;
    y = y * r + 1.0 / 120.0;
    y = y * r + 1.0 / 24.0;
    y = y * r + 1.0 / 6.0;
    y = y * r + 0.5;
    y = y * (r * r) + r + 1.0;
    p.i = ((int64_t)n + 1023) << 52;
    return y * p.f;
}

#endif
