/* Private to cpu_quant.c and cpu_quant_k.c: the activation layout, the SIMD helpers both use,
 * and the K-quant entry points cpu_quant.c dispatches to. (cpu_quant.h is the public API.)
 *
 * Activations (vibe_qact): q int8 [M, K], then d float [M, K/32] (block scales), then
 * s float [M, K/32] (d * the block's sum of q), blocks of QK = 32 values, then h int32
 * [M, K/16] (the sums of q over each 16 values: Q6_K tiles' offset). */
#ifndef VIBE_CPU_QUANT_IMPL_H
#define VIBE_CPU_QUANT_IMPL_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_quant.h"
#include "cpu_simd.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define VIBE_SIMD 1
#endif

#define QK 32   /* activation block */
#define QK_K 256 /* K-quant super-block */
#define MT 4    /* activation rows that share each decoded weight block */
#define TILE 8  /* rows of a packed tile (cpu_quant_tile.c): one per 32-bit lane of a ymm */
#if defined(__AVX512VL__)
#define TILE_MT 8 /* activation rows per pass over a packed tile (32 vector registers) */
#else
#define TILE_MT 4
#endif

enum { Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14 };

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

static inline float load_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return half_to_float(h);
}

#ifdef VIBE_SIMD
/* Sum of u8 a[i] * i8 b[i] in eight int32 lanes (lane j: bytes 4j..4j+3). */
static inline __m256i dot_u8_i8(__m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
#endif
}

/* Byte i = 16 where bit i of the 32-bit qh is set (Q5_0 / Q5_1's fifth bits), else 0. */
static inline __m256i fifth_bits(const uint8_t *qh) {
    uint32_t h;
    memcpy(&h, qh, 4);
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    return _mm256_maskz_mov_epi8((__mmask32)h, _mm256_set1_epi8(16));
#else
    const __m256i spread = _mm256_shuffle_epi8(  /* byte i <- byte i / 8 of h */
        _mm256_set1_epi32((int)h),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201ULL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
#endif
}

/* acc + the u8 x i8 dot products of a and b in eight int32 lanes (4 bytes each). */
static inline __m256i vibe_dot_acc(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
#endif
}

static inline __m256i vibe_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

#endif

#ifdef VIBE_SIMD
/* Tiles [t0, t1) of a packed matrix (w, ldw) into out (ldo) for all M activation rows, TILE_MT
 * at a time, with one tile function DOT(wt, m0, mt, acc) over activation rows m0 .. m0+mt-1:
 * a constant single row for decode, constant full groups, then the rest. Each output is
 * computed by the same operations whatever M is. (cpu_quant_tile.c, cpu_quant_ktile.c) */
#define VIBE_TILE_RANGE(DOT)                                                               \
    for (int64_t t = t0; t < t1; t++) {                                                    \
        const uint8_t *wt = w + t * TILE * ldw;                                            \
        __m256 acc[TILE_MT];                                                               \
        if (M == 1) {                                                                      \
            DOT(wt, 0, 1, acc);                                                            \
            _mm256_storeu_ps(out + t * TILE, acc[0]);                                      \
            continue;                                                                      \
        }                                                                                  \
        for (int64_t m0 = 0; m0 < M; m0 += TILE_MT) {                                     \
            const int mt = (int)(M - m0 < TILE_MT ? M - m0 : TILE_MT);                     \
            if (mt == TILE_MT)                                                             \
                DOT(wt, m0, TILE_MT, acc);                                                 \
            else                                                                           \
                DOT(wt, m0, mt, acc);                                                      \
            for (int m = 0; m < mt; m++)                                                   \
                _mm256_storeu_ps(out + (m0 + m) * ldo + t * TILE, acc[m]);                 \
        }                                                                                  \
    }
#endif

/* out[m * ldo + n] for n in [n0, n1) with one weight-row function ROW(w, q, d, s, K, mt, res):
 * a constant single row for decode, else tiles of MT activation rows. Each output is computed
 * by the same operations whatever M is. */
#define VIBE_QRANGE(ROW)                                                                   \
    if (M == 1) {                                                                          \
        for (int64_t n = n0; n < n1; n++) ROW(w + n * ldw, q, d, s, K, 1, out + n);           \
    } else {                                                                               \
        for (int64_t n = n0; n < n1; n++)                                                  \
            for (int64_t m0 = 0; m0 < M; m0 += MT) {                                       \
                const int mt = (int)(M - m0 < MT ? M - m0 : MT);                           \
                float res[MT];                                                             \
                ROW(w + n * ldw, q + m0 * K, d + m0 * nb, s + m0 * nb, K, mt, res);        \
                for (int m = 0; m < mt; m++) out[(m0 + m) * ldo + n] = res[m];             \
            }                                                                              \
    }

/* cpu_quant_tile.c: packed tiles (VIBE_PACKED in cpu_quant.h): whether a type packs, the
 * stored bytes of block b (a super-block for K-quants) of row n, and the row-range product. */
int vibe_tile_type(int qtype);
void vibe_tile_block(int qtype, const uint8_t *w, int64_t ldw, int64_t n, int64_t b,
                     uint8_t *out);
void vibe_tile_rows(int qtype, const uint8_t *w, int64_t ldw, const void *act, int64_t M,
                    int64_t K, float *out, int64_t ldo, int64_t n0, int64_t n1);
/* cpu_quant_ktile.c: the same for Q4_K / Q6_K super-blocks (h: sums of 16 activations). */
int vibe_ktile_row_bytes(int qtype, int64_t K);
void vibe_ktile_pack(int qtype, const uint8_t *rows, int64_t ld, int64_t sb, uint8_t *o);
void vibe_ktile_block(int qtype, const uint8_t *o, int r, uint8_t *b);
void vibe_ktile_rows(int qtype, const uint8_t *w, int64_t ldw, const int8_t *q, const float *d,
                     const float *s, const int32_t *h, int64_t M, int64_t K, float *out,
                     int64_t ldo, int64_t n0, int64_t n1);

/* cpu_quant_k.c: bytes of one Q4_K / Q5_K / Q6_K super-block (0 for other types), the
 * row-range product (as vibe_qdot_rows, on the unpacked activations) and one row's values. */
int vibe_kq_block_bytes(int qtype);
void vibe_kq_rows(int qtype, const uint8_t *w, int64_t ldw, const int8_t *q, const float *d,
                  const float *s, int64_t M, int64_t K, float *out, int64_t ldo, int64_t n0,
                  int64_t n1);
void vibe_kq_dequant_row(int qtype, const uint8_t *w, float *out, int64_t K);
#endif
