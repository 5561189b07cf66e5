/* Small float32 matrix products for the recurrent time loops, with the weight matrix packed
 * ONCE per sequence instead of once per step.
 *
 * Why: inside the loop every step multiplies a few batch rows by the same W_hh. A BLAS call
 * repacks W_hh into its internal panel layout at every step; for batch 32 that repacking costs
 * about as much as the arithmetic. Here W_hh is packed once (mg_pack_bt / mg_pack_bn) and each
 * step runs mg_gemm_packed, which reads the few rows of A where they are (they fit in L1, so
 * packing them too would only cost copies).
 *
 * Layout. C (M x N) = A (M x K) . B (K x N) is cut into tiles of MG_MR = 8 rows by MG_NR = 32
 * columns. Packed B: for each panel of 32 columns, K groups of 32 values; missing columns at
 * the right edge are packed as zeros. The tile keeps its 8 x 32 results in 16 AVX-512
 * registers: per k, two loads of B, eight broadcasts of A (one from each row), sixteen fused
 * multiply-adds. A block of fewer than 8 rows repeats its last row and stores only its own.
 *
 * The tile is compiled for AVX-512 only (function attribute), and mg_packed_gemm_available()
 * asks the CPU at run time; without AVX-512 (or on another compiler/architecture) the kernels
 * keep using BLAS, so this file never runs on a CPU that cannot execute it. */
#ifndef MG_GEMM_H
#define MG_GEMM_H

#include <string.h>

#define MG_MR 8
#define MG_NR 32

/* floats needed for packed B (K x N) */
static inline long mg_packed_b_size(int K, int N) {
    return (long)((N + MG_NR - 1) / MG_NR) * MG_NR * K;
}

/* B = W^T for W (N x K) row-major (the forward product h W_hh^T) -> panels of 32 columns */
static void mg_pack_bt(int N, int K, const float* w, float* bp) {
    for (int p = 0; p < N; p += MG_NR) {
        float* dst = bp + (long)p * K;
        int nr = N - p < MG_NR ? N - p : MG_NR;
        for (int k = 0; k < K; k++) {
            for (int j = 0; j < nr; j++) dst[MG_NR * k + j] = w[(long)(p + j) * K + k];
            for (int j = nr; j < MG_NR; j++) dst[MG_NR * k + j] = 0.0f;
        }
    }
}

/* B = W for W (K x N) row-major (the backward product dG W_hh) -> panels of 32 columns */
static void mg_pack_bn(int K, int N, const float* w, float* bp) {
    for (int p = 0; p < N; p += MG_NR) {
        float* dst = bp + (long)p * K;
        int nr = N - p < MG_NR ? N - p : MG_NR;
        for (int k = 0; k < K; k++) {
            memcpy(dst + MG_NR * k, w + (long)k * N + p, (size_t)nr * sizeof(float));
            for (int j = nr; j < MG_NR; j++) dst[MG_NR * k + j] = 0.0f;
        }
    }
}

#if defined(__GNUC__) && defined(__x86_64__)

typedef float mg_v16 __attribute__((vector_size(64)));
typedef float mg_v16u __attribute__((vector_size(64), aligned(4)));  /* unaligned access */

static int mg_packed_gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* can this CPU run code compiled with -march=x86-64-v4 (AVX-512 F/BW/CD/DQ/VL, AVX2, FMA...)? */
static int mg_cpu_is_x86_64_v4(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") != 0;
}

/* one 8 x 32 tile: acc = A (mr rows, lda apart, K wide) . Bp (K x 32); then C (+)= acc on its
 * mr x nr corner */
__attribute__((target("avx512f,fma")))
static void mg_tile(int K, const float* a, int lda, int mr, const float* bp, float* c, int ldc,
                    int nr, int accumulate) {
    const float* row[MG_MR];
    mg_v16 acc[MG_MR][2];
    for (int i = 0; i < MG_MR; i++) {
        row[i] = a + (long)(i < mr ? i : mr - 1) * lda;
        acc[i][0] = (mg_v16){0};
        acc[i][1] = (mg_v16){0};
    }
    for (int k = 0; k < K; k++) {
        mg_v16 b0 = *(const mg_v16u*)(bp + MG_NR * k);
        mg_v16 b1 = *(const mg_v16u*)(bp + MG_NR * k + 16);
        for (int i = 0; i < MG_MR; i++) {  /* unrolled by gcc: 16 accumulators in registers */
            acc[i][0] += row[i][k] * b0;
            acc[i][1] += row[i][k] * b1;
        }
    }
    for (int i = 0; i < mr; i++) {
        float* out_row = c + (long)i * ldc;
        if (nr == MG_NR) {
            mg_v16u* out = (mg_v16u*)out_row;
            out[0] = accumulate ? out[0] + acc[i][0] : acc[i][0];
            out[1] = accumulate ? out[1] + acc[i][1] : acc[i][1];
        } else {
            float tmp[MG_NR];
            memcpy(tmp, acc[i], sizeof(tmp));
            for (int j = 0; j < nr; j++) out_row[j] = accumulate ? out_row[j] + tmp[j] : tmp[j];
        }
    }
}

/* C (M x N, rows ldc apart) = A . B (accumulate = 0) or C += A . B (accumulate = 1);
 * A (M x K) has its rows lda apart, B is packed by mg_pack_bt / mg_pack_bn */
static void mg_gemm_packed(int M, int N, int K, const float* a, int lda, const float* bp,
                           float* c, int ldc, int accumulate) {
    for (int p = 0; p < N; p += MG_NR) {
        int nr = N - p < MG_NR ? N - p : MG_NR;
        for (int r = 0; r < M; r += MG_MR) {
            int mr = M - r < MG_MR ? M - r : MG_MR;
            mg_tile(K, a + (long)r * lda, lda, mr, bp + (long)p * K, c + (long)r * ldc + p, ldc,
                    nr, accumulate);
        }
    }
}

#else  /* no AVX-512 tile on this compiler or architecture: the kernels use BLAS */

static int mg_packed_gemm_available(void) { return 0; }
static int mg_cpu_is_x86_64_v4(void) { return 0; }

static void mg_gemm_packed(int M, int N, int K, const float* a, int lda, const float* bp,
                           float* c, int ldc, int accumulate) {
    (void)M; (void)N; (void)K; (void)a; (void)lda; (void)bp; (void)c; (void)ldc;
    (void)accumulate;
}

#endif
#endif
