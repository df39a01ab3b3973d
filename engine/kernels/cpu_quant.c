/* Linear layers on GGUF-quantized weights, as stored: out[m, n] = dot(x[m, :], w[n, :]).
 *
 * Weights keep llama.cpp's block layouts (32 values per block, an fp16 scale per block):
 *   Q4_0 {half d; u8 qs[16]}          w = d * (q - 8)   q: low nibbles 0..15, high 16..31
 *   Q4_1 {half d; half m; u8 qs[16]}  w = d * q + m
 *   Q8_0 {half d; i8 qs[32]}          w = d * q
 * Activations are quantized per call to blocks of 32 int8 with a float scale (as llama.cpp's
 * Q8_0/Q8_1), so each block is one integer dot product (AVX-512 VNNI or AVX2) and one FMA.
 * Q4_0 is Q4_1 with m = -8 d: both read the unsigned nibbles, and the min term uses the
 * activation block's integer sum.
 *
 * Threads: OpenMP over weight rows (torch's runtime); activation rows in tiles of MT that
 * share each decoded weight block. Each output is computed by the same operations whatever M
 * is, so a row's result does not depend on how many rows come with it.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_quant.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define VIBE_SIMD 1
#endif

enum { Q4_0 = 2, Q4_1 = 3, Q8_0 = 8 };
#define QK 32
#define MT 4

static inline float half_to_float(uint16_t h) {
#ifdef VIBE_SIMD
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

static int block_bytes(int qtype) {
    switch (qtype) {
        case Q4_0: return 18;
        case Q4_1: return 20;
        case Q8_0: return 34;
        default: return 0;
    }
}

/* x [M, K] fp32 -> q [M, K] int8, d [M, K/32] scales, s [M, K/32] d * sum(q). */
static void quantize_rows(const float *x, int64_t ldx, int64_t M, int64_t K, int8_t *q, float *d,
                          float *s) {
    const int64_t nb = K / QK;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + m * ldx + b * QK;
            float amax = 0.0f;
            for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(xb[i]));
            const float scale = amax / 127.0f, inv = scale ? 1.0f / scale : 0.0f;
            int8_t *qb = q + m * K + b * QK;
            int sum = 0;
            for (int i = 0; i < QK; i++) {
                qb[i] = (int8_t)lrintf(xb[i] * inv);
                sum += qb[i];
            }
            d[m * nb + b] = scale;
            s[m * nb + b] = scale * (float)sum;
        }
    }
}

#ifdef VIBE_SIMD
static inline __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m4), _mm_and_si128(b, m4));
}

/* Sum of u8 a[i] * i8 b[i] in eight int32 lanes. */
static inline __m256i dot_u8_i8(__m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
#endif
}

static inline float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
#endif

/* One weight row against mt (<= MT) quantized activation rows. */
static inline __attribute__((always_inline)) void row_dot(
    int qtype, const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t K,
    int mt, float *res) {
    const int64_t nb = K / QK;
    const int bb = block_bytes(qtype);
    float mins[MT] = {0};
#ifdef VIBE_SIMD
    __m256 acc[MT];
    for (int m = 0; m < mt; m++) acc[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * bb;
        if (qtype == Q8_0) {
            const float dw = half_to_float(*(const uint16_t *)wb);
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(wb + 2));
            const __m256i aw = _mm256_sign_epi8(wv, wv);
            for (int m = 0; m < mt; m++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(q + m * K + b * QK));
                const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(aw, _mm256_sign_epi8(xv, wv)));
                acc[m] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * d[m * nb + b]), acc[m]);
            }
        } else {
            const float dw = half_to_float(*(const uint16_t *)wb);
            const float mw = qtype == Q4_1 ? half_to_float(*(const uint16_t *)(wb + 2)) : -8.0f * dw;
            const __m256i wv = unpack_nibbles(wb + (qtype == Q4_1 ? 4 : 2));
            for (int m = 0; m < mt; m++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(q + m * K + b * QK));
                const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(wv, xv));
                acc[m] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * d[m * nb + b]), acc[m]);
                mins[m] += mw * s[m * nb + b];
            }
        }
    }
    for (int m = 0; m < mt; m++) res[m] = hsum(acc[m]) + mins[m];
#else
    float acc[MT] = {0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * bb;
        const float dw = half_to_float(*(const uint16_t *)wb);
        for (int m = 0; m < mt; m++) {
            const int8_t *xb = q + m * K + b * QK;
            int dot = 0;
            if (qtype == Q8_0) {
                const int8_t *qs = (const int8_t *)(wb + 2);
                for (int i = 0; i < QK; i++) dot += qs[i] * xb[i];
            } else {
                const uint8_t *qs = wb + (qtype == Q4_1 ? 4 : 2);
                for (int i = 0; i < 16; i++) dot += (qs[i] & 15) * xb[i] + (qs[i] >> 4) * xb[i + 16];
                const float mw =
                    qtype == Q4_1 ? half_to_float(*(const uint16_t *)(wb + 2)) : -8.0f * dw;
                mins[m] += mw * s[m * nb + b];
            }
            acc[m] += (float)dot * dw * d[m * nb + b];
        }
    }
    for (int m = 0; m < mt; m++) res[m] = acc[m] + mins[m];
#endif
}

/* ---- The row-range API (cpu_quant.h): what vibe_qlinear and the fused decode step share. */

int vibe_qtype_ok(int qtype, int64_t K) { return block_bytes(qtype) && K % QK == 0; }

int64_t vibe_qact_bytes(int64_t M, int64_t K) {
    return M * K + (M * (K / QK)) * (int64_t)sizeof(float) * 2;
}

/* The activation buffer: q int8 [M, K], then d float [M, K/32], then s float [M, K/32]. */
void vibe_qact(const float *x, int64_t ldx, int64_t M, int64_t K, void *act) {
    int8_t *q = act;
    float *d = (float *)(q + M * K);
    quantize_rows(x, ldx, M, K, q, d, d + M * (K / QK));
}

/* out[m, n] for n in [n0, n1) (one thread; the caller splits rows between threads). */
void vibe_qdot_rows(int qtype, const uint8_t *w, int64_t ldw, const void *act, int64_t M,
                    int64_t K, float *out, int64_t ldo, int64_t n0, int64_t n1) {
    const int64_t nb = K / QK;
    const int8_t *q = act;
    const float *d = (const float *)(q + M * K), *s = d + M * nb;
    /* Constant type (and a constant single row for decode) so each loop is specialised. */
#define QRANGE(QT)                                                                         \
    if (M == 1) {                                                                          \
        for (int64_t n = n0; n < n1; n++) row_dot(QT, w + n * ldw, q, d, s, K, 1, out + n);   \
    } else {                                                                               \
        for (int64_t n = n0; n < n1; n++)                                                  \
            for (int64_t m0 = 0; m0 < M; m0 += MT) {                                       \
                const int mt = (int)(M - m0 < MT ? M - m0 : MT);                           \
                float res[MT];                                                             \
                row_dot(QT, w + n * ldw, q + m0 * K, d + m0 * nb, s + m0 * nb, K, mt, res); \
                for (int m = 0; m < mt; m++) out[(m0 + m) * ldo + n] = res[m];             \
            }                                                                              \
    }
    switch (qtype) {
        case Q4_0: QRANGE(Q4_0) break;
        case Q4_1: QRANGE(Q4_1) break;
        default: QRANGE(Q8_0) break;
    }
#undef QRANGE
}

/* out [M, N] (row stride ldo) = x [M, K] @ dequant(w [N, K]).T. Returns 0, or -1 for an
 * unsupported type or K not a multiple of 32 (the caller then dequantizes). */
int vibe_qlinear(int qtype, const uint8_t *w, int64_t ldw, const float *x, int64_t ldx,
                 float *out, int64_t ldo, int64_t M, int64_t N, int64_t K) {
    if (!vibe_qtype_ok(qtype, K) || M < 1) return -1;
    void *act = malloc((size_t)vibe_qact_bytes(M, K));
    if (!act) return -1;
    vibe_qact(x, ldx, M, K, act);
#pragma omp parallel
    {
        int64_t n0, n1;
        vibe_split(N, &n0, &n1);
        vibe_qdot_rows(qtype, w, ldw, act, M, K, out, ldo, n0, n1);
    }
    free(act);
    return 0;
}

/* out [N, K] fp32 = the values of w [N, K]. Returns -1 for an unsupported type. */
int vibe_dequant(int qtype, const uint8_t *w, int64_t ldw, float *out, int64_t ldo, int64_t N,
                 int64_t K) {
    if (!block_bytes(qtype) || K % QK) return -1;
    const int bb = block_bytes(qtype);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t b = 0; b < K / QK; b++) {
            const uint8_t *wb = w + n * ldw + b * bb;
            float *o = out + n * ldo + b * QK;
            const float dw = half_to_float(*(const uint16_t *)wb);
#ifdef VIBE_SIMD
            const __m256 vd = _mm256_set1_ps(dw);
            if (qtype == Q8_0) {
                for (int i = 0; i < QK; i += 8) {
                    const __m128i q8 = _mm_loadl_epi64((const __m128i *)(wb + 2 + i));
                    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
                    _mm256_storeu_ps(o + i, _mm256_mul_ps(f, vd));
                }
            } else {
                const __m256i nib = unpack_nibbles(wb + (qtype == Q4_1 ? 4 : 2));
                const __m256 vm = _mm256_set1_ps(
                    qtype == Q4_1 ? half_to_float(*(const uint16_t *)(wb + 2)) : 0.0f);
                const __m256i off = _mm256_set1_epi32(qtype == Q4_1 ? 0 : 8);
                uint8_t tmp[32];
                _mm256_storeu_si256((__m256i *)tmp, nib);
                for (int i = 0; i < QK; i += 8) {
                    const __m128i q8 = _mm_loadl_epi64((const __m128i *)(tmp + i));
                    const __m256i qi = _mm256_sub_epi32(_mm256_cvtepu8_epi32(q8), off);
                    _mm256_storeu_ps(o + i, _mm256_fmadd_ps(_mm256_cvtepi32_ps(qi), vd, vm));
                }
            }
            continue;
#endif
            if (qtype == Q8_0) {
                const int8_t *qs = (const int8_t *)(wb + 2);
                for (int i = 0; i < QK; i++) o[i] = dw * qs[i];
            } else {
                const float mw =
                    qtype == Q4_1 ? half_to_float(*(const uint16_t *)(wb + 2)) : -8.0f * dw;
                const uint8_t *qs = wb + (qtype == Q4_1 ? 4 : 2);
                if (qtype == Q4_0) {
                    for (int i = 0; i < 16; i++) {
                        o[i] = dw * ((qs[i] & 15) - 8);
                        o[i + 16] = dw * ((qs[i] >> 4) - 8);
                    }
                } else {
                    for (int i = 0; i < 16; i++) {
                        o[i] = dw * (qs[i] & 15) + mw;
                        o[i + 16] = dw * (qs[i] >> 4) + mw;
                    }
                }
            }
        }
    }
    return 0;
}
