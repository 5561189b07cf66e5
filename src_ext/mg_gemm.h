/* Small float32 matrix products for the recurrent time loops, with the weight matrix packed
 * ONCE per sequence instead of once per step.
 *
 * Why: inside the loop every step multiplies a few batch rows by the same W_hh. A BLAS call
 * repacks W_hh into its internal panel layout at every step; for batch 32 that repacking costs
 * about as much as the arithmetic. Here W_hh is packed once (mg_pack_bt / mg_pack_bn) and each
 * step runs mg_gemm_packed, which reads the few rows of A where they are (they fit in L1, so
 * packing them too would only cost copies).
 *
 * Layout. Packed B (K x N): for each panel of 32 columns, K groups of 32 values; missing
 * columns at the right edge are packed as zeros. Two tiles read it:
 * - AVX-512: 8 rows by 32 columns, its 8 x 32 results in 16 registers: per k, two loads of B,
 *   eight broadcasts of A (one from each row), sixteen fused multiply-adds.
 * - AVX2 (with FMA): 6 rows by 16 columns (half a panel), 12 registers of results: per k, two
 *   loads of B, six broadcasts, twelve fused multiply-adds.
 * A block of fewer rows than the tile's repeats its last row and stores only its own.
 *
 * Both tiles compute every element of C the same way: one fused multiply-add per k, k from 0
 * up, from zero, then (accumulate) added to C once. So a row of C never depends on which tile
 * computed it, on how many rows were in the call or on where the row sat in it: the same
 * numbers on either CPU, and for any split of the batch rows across workers.
 *
 * Each tile is compiled for its instruction set only (function attributes), and the callers
 * ask the CPU at run time (mg_packed_gemm_available, mg_packed_step_available); without
 * either (or on another compiler/architecture) the kernels keep using BLAS, so this file never
 * runs on a CPU that cannot execute it. The weight-gradient and input-gradient products read in
 * place (mg_gemm_tn, mg_gemm_nn) have the AVX-512 tile only. */
#ifndef MG_GEMM_H
#define MG_GEMM_H

#include <stdlib.h>
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

/* one 8 x 32 tile of C (rows ldc apart): C (+)= A . B over k < K, for the tile's mr rows of A,
 * A(i, k) = a[i * a_row + k * a_col], and its 32 columns of B, B(k, j) = b[k * b_k + j]. The
 * strides let the same tile read A by rows (the per-step products) or by columns (A^T in the
 * weight gradients), and B packed (b_k = 32) or in place (b_k = its row length). */
__attribute__((target("avx512f,fma")))
static void mg_tile(int K, const float* a, long a_row, long a_col, int mr, const float* b,
                    long b_k, float* c, int ldc, int nr, int accumulate) {
    long row[MG_MR];
    mg_v16 acc[MG_MR][2];
    for (int i = 0; i < MG_MR; i++) {
        row[i] = (i < mr ? i : mr - 1) * a_row;
        acc[i][0] = (mg_v16){0};
        acc[i][1] = (mg_v16){0};
    }
    for (int k = 0; k < K; k++) {
        mg_v16 b0 = *(const mg_v16u*)(b + b_k * k);
        mg_v16 b1 = *(const mg_v16u*)(b + b_k * k + 16);
        const float* ak = a + a_col * k;
        for (int i = 0; i < MG_MR; i++) {  /* unrolled by gcc: 16 accumulators in registers */
            acc[i][0] += ak[row[i]] * b0;
            acc[i][1] += ak[row[i]] * b1;
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

/* C (M x N, rows ldc apart) = A . B (accumulate = 0) or C += A . B (accumulate = 1), A (M x K)
 * read by rows (lda apart). B's panel of columns [p, p + 32) starts at b + p * b_panel and
 * its rows are b_k apart: the two layouts below. */
static void mg_gemm_rows(int M, int N, int K, const float* a, int lda, const float* b,
                         long b_panel, long b_k, float* c, int ldc, int accumulate) {
    for (int p = 0; p < N; p += MG_NR) {
        int nr = N - p < MG_NR ? N - p : MG_NR;
        for (int r = 0; r < M; r += MG_MR) {
            int mr = M - r < MG_MR ? M - r : MG_MR;
            mg_tile(K, a + (long)r * lda, lda, 1, mr, b + p * b_panel, b_k,
                    c + (long)r * ldc + p, ldc, nr, accumulate);
        }
    }
}

typedef float mg_v8 __attribute__((vector_size(32)));
typedef float mg_v8u __attribute__((vector_size(32), aligned(4)));  /* unaligned access */

#define MG_MR2 6   /* the AVX2 tile: 6 rows by 16 columns, half a packed panel */
#define MG_NR2 16

static int mg_avx2_fma_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* one 6 x 16 tile of C (rows ldc apart): C (+)= A . B over k < K for the tile's mr rows of A
 * (rows lda apart) and 16 columns of packed B (groups of 32 values, b at the half-panel's
 * first), storing its first nr columns. Each element: one fused multiply-add per k, as the
 * AVX-512 tile. */
__attribute__((target("avx2,fma")))
static void mg_tile_avx2(int K, const float* a, int lda, int mr, const float* b, float* c,
                         int ldc, int nr, int accumulate) {
    const float* row[MG_MR2];
    mg_v8 acc[MG_MR2][2];
    for (int i = 0; i < MG_MR2; i++) {
        row[i] = a + (long)(i < mr ? i : mr - 1) * lda;
        acc[i][0] = (mg_v8){0};
        acc[i][1] = (mg_v8){0};
    }
    for (int k = 0; k < K; k++) {
        mg_v8 b0 = *(const mg_v8u*)(b + MG_NR * k);
        mg_v8 b1 = *(const mg_v8u*)(b + MG_NR * k + 8);
        for (int i = 0; i < MG_MR2; i++) {  /* unrolled by gcc: 12 accumulators in registers */
            acc[i][0] += row[i][k] * b0;
            acc[i][1] += row[i][k] * b1;
        }
    }
    for (int i = 0; i < mr; i++) {
        float* out_row = c + (long)i * ldc;
        if (nr == MG_NR2) {
            mg_v8u* out = (mg_v8u*)out_row;
            out[0] = accumulate ? out[0] + acc[i][0] : acc[i][0];
            out[1] = accumulate ? out[1] + acc[i][1] : acc[i][1];
        } else {
            float tmp[MG_NR2];
            memcpy(tmp, acc[i], sizeof(tmp));
            for (int j = 0; j < nr; j++) out_row[j] = accumulate ? out_row[j] + tmp[j] : tmp[j];
        }
    }
}

/* mg_gemm_packed on the AVX2 tile: each half-panel of 16 columns, all row blocks (the
 * half-panel, K x 16 floats, stays in L1 while they run) */
static void mg_gemm_packed_avx2(int M, int N, int K, const float* a, int lda, const float* bp,
                                float* c, int ldc, int accumulate) {
    for (int p = 0; p < N; p += MG_NR2) {
        int nr = N - p < MG_NR2 ? N - p : MG_NR2;
        const float* b = bp + (long)(p / MG_NR) * MG_NR * K + p % MG_NR;
        for (int r = 0; r < M; r += MG_MR2) {
            int mr = M - r < MG_MR2 ? M - r : MG_MR2;
            mg_tile_avx2(K, a + (long)r * lda, lda, mr, b, c + (long)r * ldc + p, ldc, nr,
                         accumulate);
        }
    }
}

/* Which tile mg_gemm_packed runs: 2 the AVX-512 one, 1 the AVX2 one, 0 none (BLAS). Asked once
 * per module: the CPU, and MINIGRAD_AVX512=0 (no AVX-512 code) or MINIGRAD_PACKED=0 (no
 * packed step products at all). */
static int mg_packed_kind(void) {
    static int kind = -1;
    if (kind < 0) {
        const char* no512 = getenv("MINIGRAD_AVX512");
        const char* packed = getenv("MINIGRAD_PACKED");
        if (packed != NULL && strcmp(packed, "0") == 0) kind = 0;
        else if (mg_packed_gemm_available() && !(no512 != NULL && strcmp(no512, "0") == 0))
            kind = 2;
        else kind = mg_avx2_fma_available() ? 1 : 0;
    }
    return kind;
}

static int mg_packed_step_available(void) { return mg_packed_kind() != 0; }

/* B packed by mg_pack_bt / mg_pack_bn (a panel is K groups of 32 values); only called when
 * mg_packed_step_available() */
static void mg_gemm_packed(int M, int N, int K, const float* a, int lda, const float* bp,
                           float* c, int ldc, int accumulate) {
    if (mg_packed_kind() == 2)
        mg_gemm_rows(M, N, K, a, lda, bp, K, MG_NR, c, ldc, accumulate);
    else
        mg_gemm_packed_avx2(M, N, K, a, lda, bp, c, ldc, accumulate);
}

/* B (K x N) read in place, rows ldb apart; N a multiple of 32 (no partial panel to read past
 * the rows). For products whose B is small and used once (the Linear layer's dX = dY W). */
static void mg_gemm_nn(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                       float* c, int ldc, int accumulate) {
    mg_gemm_rows(M, N, K, a, lda, b, 1, ldb, c, ldc, accumulate);
}

/* Does mg_gemm_nn suit C = A (M x K) . B (K x N)? Whole 32-column panels, and B within 256 KB
 * (a quarter of a core's L2 here), as B is read in place without blocking; larger operands go
 * to BLAS, which blocks them. */
static inline int mg_gemm_nn_suits(int K, int N) {
    return N % MG_NR == 0 && (long)K * N * 4 <= (256L << 10);
}

#define MG_KB 256  /* rows of A and B per block in mg_gemm_tn: a block of both stays in L2 */

/* Does mg_gemm_tn suit C (M x N)? Whole tiles only, and a block of A and B (MG_KB rows of
 * M + N floats) within 1 MB, the L2 of a core of this generation. Beyond that (the LSTM's
 * dW_hh at H = 512 on 2 workers) BLAS, which also blocks M and N, is the faster of the two
 * (figures in benchmarks/RESULTS.md). */
static inline int mg_gemm_tn_suits(int M, int N) {
    return M % MG_MR == 0 && N % MG_NR == 0 && (long)(M + N) * MG_KB * 4 <= (1L << 20);
}

/* C (M x N, rows ldc apart) = A^T . B for A (K x M) and B (K x N), both read in place (rows
 * lda and ldb apart); M a multiple of 8 and N of 32 (no edges). For the weight gradients after
 * the time loop, dW = dG^T X, whose K (time steps x batch rows) is long: K is cut into blocks
 * of MG_KB rows, and every tile runs over one block before the next block is read. */
static void mg_gemm_tn(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                       float* c, int ldc) {
    int k0 = 0;
    do {  /* at least once: K = 0 gives C = 0 */
        int kb = K - k0 < MG_KB ? K - k0 : MG_KB;
        for (int r = 0; r < M; r += MG_MR) {
            for (int p = 0; p < N; p += MG_NR) {
                mg_tile(kb, a + (long)k0 * lda + r, 1, lda, MG_MR, b + (long)k0 * ldb + p, ldb,
                        c + (long)r * ldc + p, ldc, MG_NR, k0 > 0);
            }
        }
        k0 += MG_KB;
    } while (k0 < K);
}

#else  /* no AVX-512 tile on this compiler or architecture: the kernels use BLAS */

static int mg_packed_gemm_available(void) { return 0; }
static int mg_packed_step_available(void) { return 0; }
static inline int mg_gemm_tn_suits(int M, int N) { (void)M; (void)N; return 0; }
static inline int mg_gemm_nn_suits(int K, int N) { (void)K; (void)N; return 0; }

static void mg_gemm_packed(int M, int N, int K, const float* a, int lda, const float* bp,
                           float* c, int ldc, int accumulate) {
    (void)M; (void)N; (void)K; (void)a; (void)lda; (void)bp; (void)c; (void)ldc;
    (void)accumulate;
}

static void mg_gemm_nn(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                       float* c, int ldc, int accumulate) {
    (void)M; (void)N; (void)K; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)accumulate;
}

static void mg_gemm_tn(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                       float* c, int ldc) {
    (void)M; (void)N; (void)K; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
}

#endif
#endif
