/* The LSTM's gate pass for one batch row, forward and backward, each ONE loop over the H units
 * with every value in registers once loaded (lstm_kernels.pyx calls them from its time loops;
 * the numbered steps are the twin's, minigrad/fast/_reference_rnn.py). restrict (the arrays never
 * overlap) lets gcc vectorise the loops without run-time overlap checks. */
#ifndef MG_LSTM_ROWS_H
#define MG_LSTM_ROWS_H

#include "mg_math.h"

/* Steps (1)-(5) of the backward gate pass for one batch row (see _backward_loop): ONE loop
 * over the H units, every value in registers once loaded. restrict (the arrays never
 * overlap) lets gcc vectorise it without run-time overlap checks; the operations are in
 * the order of the twin's formulas. */
#define MG_LSTM_ROW_BACKWARD(NAME, T)                                                   \
static inline void NAME(long H, const T* restrict a, const T* restrict cp,              \
                        const T* restrict tc, const T* restrict go,                     \
                        const T* restrict dhb, const T* restrict p0,                    \
                        const T* restrict p1, const T* restrict p2, T* restrict dcb,    \
                        T* restrict dg, T* restrict ds) {                               \
    for (long j = 0; j < H; j++) {                                                      \
        T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], th = tc[j];       \
        T d = go[j] + dhb[j];                                                           \
        T d_o = d * th * o * ((T)1 - o);                                                \
        T dc = dcb[j] + d * o * ((T)1 - th * th) + p2[j] * d_o;                         \
        T d_i = dc * g * i * ((T)1 - i);                                                \
        T d_f = dc * cp[j] * f * ((T)1 - f);                                            \
        T d_g = dc * i * ((T)1 - g * g);                                                \
        ds[j] = d;                                                                      \
        dg[j] = d_i;                                                                    \
        dg[H + j] = d_f;                                                                \
        dg[2 * H + j] = d_g;                                                            \
        dg[3 * H + j] = d_o;                                                            \
        dcb[j] = dc * f + p0[j] * d_i + p1[j] * d_f;                                    \
    }                                                                                   \
}
MG_LSTM_ROW_BACKWARD(mg_lstm_row_backward_f, float)
MG_LSTM_ROW_BACKWARD(mg_lstm_row_backward_d, double)

/* Steps (3)-(5) of the forward gate pass for one batch row (see _forward_loop), in one loop
 * over the units like the backward's; EXP is rnn_common's branch-free exp, so the loop
 * vectorises. sigmoid(x) = 1 / (1 + e^-x), tanh(x) = 2 / (1 + e^-2x) - 1, as
 * rnn_common.sigmoid and tanh_. */
#define MG_LSTM_ROW_FORWARD(NAME, T, EXP)                                               \
static inline void NAME(long H, T* restrict a, const T* restrict cp,                    \
                        const T* restrict p0, const T* restrict p1,                     \
                        const T* restrict p2, T* restrict cc, T* restrict tc,           \
                        T* restrict hc, T* restrict y) {                                \
    for (long j = 0; j < H; j++) {                                                      \
        T i = (T)1 / ((T)1 + EXP(-(a[j] + p0[j] * cp[j])));                            \
        T f = (T)1 / ((T)1 + EXP(-(a[H + j] + p1[j] * cp[j])));                        \
        T g = (T)2 / ((T)1 + EXP((T)-2 * a[2 * H + j])) - (T)1;                         \
        T c = f * cp[j] + i * g;                                                        \
        T o = (T)1 / ((T)1 + EXP(-(a[3 * H + j] + p2[j] * c)));                        \
        T th = (T)2 / ((T)1 + EXP((T)-2 * c)) - (T)1;                                   \
        a[j] = i;                                                                       \
        a[H + j] = f;                                                                   \
        a[2 * H + j] = g;                                                               \
        a[3 * H + j] = o;                                                               \
        cc[j] = c;                                                                      \
        tc[j] = th;                                                                     \
        hc[j] = o * th;                                                                 \
        y[j] = o * th;                                                                  \
    }                                                                                   \
}
MG_LSTM_ROW_FORWARD(mg_lstm_row_forward_f, float, mg_expf)
MG_LSTM_ROW_FORWARD(mg_lstm_row_forward_d, double, mg_exp)

#endif
