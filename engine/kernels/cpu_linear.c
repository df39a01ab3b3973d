/* Small-batch fp32 linear layer for CPU decoding: out[m, n] = dot(x[m, :], w[n, :]).
 *
 * Speculative verification (M = K + 1 <= 16 rows) is memory-bound: every weight is read once
 * per step. MKL's sgemm is far from the bandwidth limit for M = 2..8 on wide matrices; this
 * kernel streams each weight row once and applies it to all M inputs held in L1. Each output
 * element is computed by the same sequence of operations whatever M is, so a row's result does
 * not depend on how many rows are verified together.
 *
 * Threads: OpenMP over ranges of weight rows, sharing torch's runtime (same libgomp soname);
 * vibe_f32_rows is the one-thread row range the fused decode step (cpu_decode.c) calls.
 */
#include <math.h>
#include <stdint.h>

#include "cpu_linear.h"
#include "cpu_simd.h"
#include "cpu_threads.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define VW 16
typedef __m512 vec;
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VSUM(v) _mm512_reduce_add_ps(v)
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VW 8
typedef __m256 vec;
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VSUM(v) vibe_hsum8(v)
#else
#define VW 1
typedef float vec;
#define VZERO() 0.0f
#define VLOAD(p) (*(p))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VSUM(v) (v)
#endif

#define MAX_M 16

/* R weight rows x M inputs, R*M accumulators (independent FMA chains). Always inlined with
 * constant R, M so the accumulators live in registers. */
static inline __attribute__((always_inline)) void block(
    const float *x, int64_t ldx, const float *w, int64_t ldw, float *out, int64_t ldo,
    int64_t n0, int R, int M, int64_t K) {
    vec acc[8][MAX_M];
    for (int r = 0; r < R; r++)
        for (int m = 0; m < M; m++) acc[r][m] = VZERO();
    const int64_t K_main = K - K % VW;
    for (int64_t k = 0; k < K_main; k += VW) {
        vec xv[MAX_M];
        for (int m = 0; m < M; m++) xv[m] = VLOAD(x + m * ldx + k);
        for (int r = 0; r < R; r++) {
            vec wv = VLOAD(w + (n0 + r) * ldw + k);
            for (int m = 0; m < M; m++) acc[r][m] = VFMA(wv, xv[m], acc[r][m]);
        }
    }
    for (int r = 0; r < R; r++) {
        const float *wr = w + (n0 + r) * ldw;
        for (int m = 0; m < M; m++) {
            float s = VSUM(acc[r][m]);
            for (int64_t k = K_main; k < K; k++) s += wr[k] * x[m * ldx + k];
            out[m * ldo + n0 + r] = s;
        }
    }
}

/* Rows [n0, n1) in blocks of R, leftover rows one at a time. */
#define RANGE(R_, M_)                                                                    \
    {                                                                                    \
        int64_t n = n0;                                                                  \
        for (; n + (R_) <= n1; n += (R_)) block(x, ldx, w, ldw, out, ldo, n, (R_), (M_), K); \
        for (; n < n1; n++) block(x, ldx, w, ldw, out, ldo, n, 1, (M_), K);              \
    }                                                                                    \
    break;

/* Rows per block by M, measured (2-core Zen 4, fp32 SmolLM2 matrices from DRAM): one weight
 * row at a time streams best where the inputs fit in registers beside it: a decode step (M=1)
 * reads weights at ~48 GB/s one row at a time against ~35 GB/s eight at a time (8 streams a
 * thread), 76 against 58 tok/s for the whole model. The results do not depend on R: each
 * (row, input) pair is one FMA chain over k whatever the block. */
void vibe_f32_rows(const float *x, int64_t ldx, const float *w, int64_t ldw, float *out,
                   int64_t ldo, int64_t M, int64_t K, int64_t n0, int64_t n1) {
    switch (M) {
        case 1: RANGE(1, 1)
        case 2: RANGE(8, 2)
        case 3: RANGE(6, 3)
        case 4: RANGE(1, 4)
        case 5: RANGE(4, 5)
        case 6: RANGE(1, 6)
        case 7: RANGE(1, 7)
        case 8: RANGE(2, 8)
        case 9: RANGE(2, 9)
        case 10: RANGE(2, 10)
        case 11: RANGE(2, 11)
        case 12: RANGE(1, 12)
        case 13: RANGE(1, 13)
        case 14: RANGE(1, 14)
        case 15: RANGE(1, 15)
        default: RANGE(1, 16)
    }
}

/* Returns 0 on success, -1 when M is out of range (the caller falls back to torch). Threads
 * take contiguous ranges of whole 8-row blocks. */
int vibe_linear_f32(const float *x, int64_t ldx, const float *w, int64_t ldw, float *out,
                    int64_t ldo, int64_t M, int64_t N, int64_t K) {
    if (M < 1 || M > MAX_M) return -1;
#pragma omp parallel
    {
        int64_t b0, b1;
        vibe_split((N + 7) / 8, &b0, &b1);
        const int64_t n1 = b1 * 8 < N ? b1 * 8 : N;
        vibe_f32_rows(x, ldx, w, ldw, out, ldo, M, K, b0 * 8, n1);
    }
    return 0;
}

/* Residual add and RMSNorm of M rows of K floats, for decode steps (one thread: the rows are
 * short). sum = resid + delta (resid may be NULL: sum = delta) is stored in `sum`; out = w *
 * (sum / sqrt(mean(sum^2) + eps)), as transformers computes it in fp32. */
void vibe_add_rmsnorm_f32(const float *delta, const float *resid, float *sum, const float *w,
                          float *out, int64_t M, int64_t K, float eps) {
    for (int64_t m = 0; m < M; m++) {
        const float *d = delta + m * K;
        float *s = sum + m * K, *o = out + m * K;
        double acc = 0.0;
        if (resid) {
            const float *r = resid + m * K;
            for (int64_t k = 0; k < K; k++) s[k] = r[k] + d[k];
        } else if (s != d) {
            for (int64_t k = 0; k < K; k++) s[k] = d[k];
        }
        for (int64_t k = 0; k < K; k++) acc += (double)s[k] * s[k];
        float inv = 1.0f / sqrtf((float)(acc / (double)K) + eps);
        for (int64_t k = 0; k < K; k++) o[k] = w[k] * (s[k] * inv);
    }
}
