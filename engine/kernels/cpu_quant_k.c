/* GGUF K-quants kept as stored: 256-value super-blocks (llama.cpp's ggml-common.h layouts).
 *   Q4_K {half d, dmin; u8 scales[12]; u8 qs[128]}            144 bytes
 *   Q5_K {half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]} 176 bytes
 *   Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; half d}       210 bytes
 * Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scale sc and min m packed in `scales`,
 * w = d*sc*q - dmin*m (q 0..15 / 0..31; sub-block 2k: low nibbles of qs[32k..32k+32],
 * 2k+1: their high nibbles; Q5_K's fifth bit of sub-block j is bit j of qh[l]).
 * Q6_K: 16 sub-blocks of 16 with int8 scales, w = d*sc*(q-32) (q 0..63, low 4 bits in ql,
 * high 2 in qh; see decode_block).
 *
 * Sub-blocks line up with the 32-value activation blocks (cpu_quant_impl.h): per activation
 * block one integer dot product and one FMA with the scale d*sc*dx; Q4_K/Q5_K's min term is
 * dmin*m times the block's s = dx*sum(q). Q6_K takes |w| * sign(x, w) so that u8*i8 products
 * apply, and weighs its two 16-value halves by their scales with one madd. */
#include "cpu_quant_impl.h"

int vibe_kq_block_bytes(int qtype) {
    switch (qtype) {
        case Q4_K: return 144;
        case Q5_K: return 176;
        case Q6_K: return 210;
        default: return 0;
    }
}

/* The 6-bit scales and mins of the 8 sub-blocks of Q4_K / Q5_K (ggml's get_scale_min_k4),
 * byte j of *sc / *mn for sub-block j; in registers (byte stores then a wide load would stall
 * store forwarding). */
static inline void scale_min_k4(const uint8_t *p, uint64_t *sc, uint64_t *mn) {
    uint32_t a[3];
    memcpy(a, p, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t sc_hi = (a[2] & m4) | (((a[0] >> 6) & m2) << 4);
    const uint32_t mn_hi = ((a[2] >> 4) & m4) | (((a[1] >> 6) & m2) << 4);
    *sc = (a[0] & m6) | (uint64_t)sc_hi << 32;
    *mn = (a[1] & m6) | (uint64_t)mn_hi << 32;
}

static inline int byte_of(uint64_t v, int j) { return (int)((v >> (8 * j)) & 0xff); }

/* The 256 integer values of a super-block: Q4_K 0..15, Q5_K 0..31, Q6_K -32..31. */
static inline void decode_block(int qtype, const uint8_t *b, int8_t *v) {
    if (qtype == Q6_K) {
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            int8_t *o = v + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        return;
    }
    const uint8_t *qs = b + (qtype == Q4_K ? 16 : 48), *qh = b + 16;
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 32; l++) {
            int lo = qs[32 * k + l] & 15, hi = qs[32 * k + l] >> 4;
            if (qtype == Q5_K) {
                lo |= ((qh[l] >> (2 * k)) & 1) << 4;
                hi |= ((qh[l] >> (2 * k + 1)) & 1) << 4;
            }
            v[64 * k + l] = (int8_t)lo;
            v[64 * k + 32 + l] = (int8_t)hi;
        }
}

void vibe_kq_dequant_row(int qtype, const uint8_t *w, float *out, int64_t K) {
    const int bb = vibe_kq_block_bytes(qtype);
    int8_t v[QK_K];
    for (int64_t sb = 0; sb < K / QK_K; sb++) {
        const uint8_t *b = w + sb * bb;
        float *o = out + sb * QK_K;
        decode_block(qtype, b, v);
        if (qtype == Q6_K) {
            const float d = load_half(b + 208);
            const int8_t *sc = (const int8_t *)(b + 192);
            for (int i = 0; i < QK_K; i++) o[i] = (d * sc[i / 16]) * v[i];
            continue;
        }
        const float d = load_half(b), dmin = load_half(b + 2);
        uint64_t sc, mn;
        scale_min_k4(b + 4, &sc, &mn);
        for (int i = 0; i < QK_K; i++)
            o[i] = (d * byte_of(sc, i / 32)) * v[i] - dmin * byte_of(mn, i / 32);
    }
}

#ifndef VIBE_SIMD
/* Plain C: one weight row against mt (<= MT) activation rows. */
static inline __attribute__((always_inline)) void row_plain(
    int qtype, const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t K,
    int mt, float *res) {
    const int64_t nb = K / QK;
    const int bb = vibe_kq_block_bytes(qtype);
    float acc[MT] = {0}, mins[MT] = {0};
    int8_t v[QK_K];
    for (int64_t sb = 0; sb < K / QK_K; sb++) {
        const uint8_t *b = w + sb * bb;
        decode_block(qtype, b, v);
        for (int m = 0; m < mt; m++) {
            const int8_t *x = q + m * K + sb * QK_K;
            const int64_t a = m * nb + sb * 8;
            if (qtype == Q6_K) {
                const float dw = load_half(b + 208);
                const int8_t *sc = (const int8_t *)(b + 192);
                for (int j = 0; j < 8; j++) {
                    int lo = 0, hi = 0;
                    for (int i = 0; i < 16; i++) {
                        lo += v[32 * j + i] * x[32 * j + i];
                        hi += v[32 * j + 16 + i] * x[32 * j + 16 + i];
                    }
                    acc[m] += (float)(sc[2 * j] * lo + sc[2 * j + 1] * hi) * (dw * d[a + j]);
                }
            } else {
                const float dw = load_half(b), dmin = load_half(b + 2);
                uint64_t sc, mn;
                scale_min_k4(b + 4, &sc, &mn);
                for (int j = 0; j < 8; j++) {
                    int dot = 0;
                    for (int i = 0; i < 32; i++) dot += v[32 * j + i] * x[32 * j + i];
                    acc[m] += (float)dot * ((dw * byte_of(sc, j)) * d[a + j]);
                    mins[m] += (dmin * byte_of(mn, j)) * s[a + j];
                }
            }
        }
    }
    for (int m = 0; m < mt; m++) res[m] = acc[m] - mins[m];
}
#define ROW_Q4K(...) row_plain(Q4_K, __VA_ARGS__)
#define ROW_Q5K(...) row_plain(Q5_K, __VA_ARGS__)
#define ROW_Q6K(...) row_plain(Q6_K, __VA_ARGS__)
#else
static inline __m256 u8x8_to_ps(uint64_t v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)v)));
}

/* Q4_K / Q5_K: one weight row against mt (<= MT) activation rows. */
static inline __attribute__((always_inline)) void row_q45k(
    int qtype, const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t K,
    int mt, float *res) {
    const int64_t nb = K / QK;
    const int bb = qtype == Q4_K ? 144 : 176;
    const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    __m256 acc[MT], mins[MT];
    for (int m = 0; m < mt; m++) acc[m] = mins[m] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < K / QK_K; sb++) {
        const uint8_t *b = w + sb * bb;
        uint64_t sc, mn;
        scale_min_k4(b + 4, &sc, &mn);
        const __m256 scf = _mm256_mul_ps(_mm256_set1_ps(load_half(b)), u8x8_to_ps(sc));
        const __m256 mnf = _mm256_mul_ps(_mm256_set1_ps(load_half(b + 2)), u8x8_to_ps(mn));
        float scale[MT][8]; /* d*sc_j*dx_j of each activation row */
        for (int m = 0; m < mt; m++) {
            const int64_t a = m * nb + sb * 8;
            _mm256_storeu_ps(scale[m], _mm256_mul_ps(scf, _mm256_loadu_ps(d + a)));
            mins[m] = _mm256_fmadd_ps(mnf, _mm256_loadu_ps(s + a), mins[m]);
        }
        const uint8_t *qs = b + (qtype == Q4_K ? 16 : 48);
        __m256i hb = qtype == Q5_K ? _mm256_loadu_si256((const __m256i *)(b + 16))
                                   : _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (qtype == Q5_K) { /* bit 2k of each qh byte -> 16 in sub-block 2k, 2k+1 next */
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hb = _mm256_srli_epi16(hb, 1);
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hb = _mm256_srli_epi16(hb, 1);
            }
            for (int m = 0; m < mt; m++) {
                const int8_t *x = q + m * K + sb * QK_K + 64 * k;
                const __m256i x0 = _mm256_loadu_si256((const __m256i *)x);
                const __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
                acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8_i8(lo, x0)),
                                         _mm256_broadcast_ss(&scale[m][2 * k]), acc[m]);
                acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8_i8(hi, x1)),
                                         _mm256_broadcast_ss(&scale[m][2 * k + 1]), acc[m]);
            }
        }
    }
    for (int m = 0; m < mt; m++) res[m] = vibe_hsum8(acc[m]) - vibe_hsum8(mins[m]);
}

/* Q6_K: one weight row against mt (<= MT) activation rows. */
static inline __attribute__((always_inline)) void row_q6k(
    const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t K, int mt,
    float *res) {
    (void)s;
    const int64_t nb = K / QK;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i c32 = _mm256_set1_epi8(32);
    __m256 acc[MT];
    for (int m = 0; m < mt; m++) acc[m] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < K / QK_K; sb++) {
        const uint8_t *b = w + sb * 210;
        const int8_t *sc = (const int8_t *)(b + 192);
        const __m256 dw = _mm256_set1_ps(load_half(b + 208));
        float scale[MT][8]; /* d*dx_j of each activation row */
        for (int m = 0; m < mt; m++)
            _mm256_storeu_ps(scale[m], _mm256_mul_ps(dw, _mm256_loadu_ps(d + m * nb + sb * 8)));
        for (int h = 0; h < 2; h++) {
            const __m256i q0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
            const __m256i q1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
            __m256i v[4];
            v[0] = _mm256_or_si256(_mm256_and_si256(q0, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
            v[1] = _mm256_or_si256(_mm256_and_si256(q1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
            v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q0, 4), m4),
                                   _mm256_and_si256(hb, m30));
            v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
            for (int g = 0; g < 4; g++) {
                const int j = 4 * h + g; /* activation block; scales 2j (first 16), 2j+1 */
                const __m256i wv = _mm256_sub_epi8(v[g], c32);
                const __m256i aw = _mm256_sign_epi8(wv, wv);
                const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * j + 1]),
                                                     _mm_set1_epi16(sc[2 * j]));
                for (int m = 0; m < mt; m++) {
                    const __m256i x = _mm256_loadu_si256(
                        (const __m256i *)(q + m * K + sb * QK_K + 32 * j));
                    const __m256i p = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, wv)), scv);
                    acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                             _mm256_broadcast_ss(&scale[m][j]), acc[m]);
                }
            }
        }
    }
    for (int m = 0; m < mt; m++) res[m] = vibe_hsum8(acc[m]);
}

#define ROW_Q4K(...) row_q45k(Q4_K, __VA_ARGS__)
#define ROW_Q5K(...) row_q45k(Q5_K, __VA_ARGS__)
#define ROW_Q6K(...) row_q6k(__VA_ARGS__)
#endif

void vibe_kq_rows(int qtype, const uint8_t *w, int64_t ldw, const int8_t *q, const float *d,
                  const float *s, int64_t M, int64_t K, float *out, int64_t ldo, int64_t n0,
                  int64_t n1) {
    const int64_t nb = K / QK;
    switch (qtype) {
        case Q4_K: VIBE_QRANGE(ROW_Q4K) break;
        case Q5_K: VIBE_QRANGE(ROW_Q5K) break;
        default: VIBE_QRANGE(ROW_Q6K) break;
    }
}
