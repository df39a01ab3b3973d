/* Linear layers on GGUF-quantized weights, as stored: out[m, n] = dot(x[m, :], w[n, :]).
 *
 * Weights keep llama.cpp's block layouts (32 values per block, an fp16 scale per block):
 *   Q4_0 {half d; u8 qs[16]}                   w = d * (q - 8)   q: low nibbles 0..15, high 16..31
 *   Q4_1 {half d; half m; u8 qs[16]}           w = d * q + m
 *   Q5_0 {half d; u8 qh[4]; u8 qs[16]}         w = d * (q - 16)  fifth bit of value i: bit i of qh
 *   Q5_1 {half d; half m; u8 qh[4]; u8 qs[16]} w = d * q + m
 *   Q8_0 {half d; i8 qs[32]}                   w = d * q
 * and the K-quants (Q4_K, Q5_K, Q6_K: 256-value super-blocks) in cpu_quant_k.c.
 * Activations are quantized per call to blocks of 32 int8 with a float scale (as llama.cpp's
 * Q8_0/Q8_1), so each block is one integer dot product (AVX-512 VNNI or AVX2) and one FMA.
 * Q4_0 / Q5_0 are Q4_1 / Q5_1 with m = -8 d / -16 d: all read unsigned values, and the min term
 * uses the activation block's integer sum.
 *
 * Threads: OpenMP over weight rows (torch's runtime); activation rows in tiles of MT that
 * share each decoded weight block. Each output is computed by the same operations whatever M
 * is, so a row's result does not depend on how many rows come with it.
 */
#include <stdlib.h>

#include "cpu_quant_impl.h"

/* Bytes of one block (32 values, or a 256-value K-quant super-block); 0: not run here. */
static int block_bytes(int qtype) {
    switch (qtype) {
        case Q4_0: return 18;
        case Q4_1: return 20;
        case Q5_0: return 22;
        case Q5_1: return 24;
        case Q8_0: return 34;
        default: return vibe_kq_block_bytes(qtype);
    }
}

static int block_values(int qtype) { return vibe_kq_block_bytes(qtype) ? QK_K : QK; }

/* x [M, K] fp32 -> q [M, K] int8, d [M, K/32] scales, s [M, K/32] d * sum(q), h [M, K/16] the
 * sums of q per 16. (The SIMD path gives the same bytes: the same products, rounded to nearest
 * even.) */
static void quantize_rows(const float *x, int64_t ldx, int64_t M, int64_t K, int8_t *q, float *d,
                          float *s, int32_t *h) {
    const int64_t nb = K / QK;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + m * ldx + b * QK;
            int8_t *qb = q + m * K + b * QK;
#ifdef VIBE_SIMD
            const __m256 sign = _mm256_set1_ps(-0.0f);
            __m256 v[4], amax = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                v[i] = _mm256_loadu_ps(xb + 8 * i);
                amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
            }
            __m128 mx = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
            mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
            mx = _mm_max_ss(mx, _mm_movehdup_ps(mx));
            const float scale = _mm_cvtss_f32(mx) / 127.0f, inv = scale ? 1.0f / scale : 0.0f;
            __m256i iv[4];
            for (int i = 0; i < 4; i++)
                iv[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], _mm256_set1_ps(inv)));
            int half[2];
            for (int k = 0; k < 2; k++) {
                const __m256i v2 = _mm256_add_epi32(iv[2 * k], iv[2 * k + 1]);
                __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v2), _mm256_extracti128_si256(v2, 1));
                t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
                t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
                half[k] = _mm_cvtsi128_si32(t);
            }
            const int sum = half[0] + half[1];
            const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]),
                                                      _mm256_packs_epi32(iv[2], iv[3]));
            _mm256_storeu_si256((__m256i *)qb, _mm256_permutevar8x32_epi32(
                                                   packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
#else
            float amax = 0.0f;
            for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(xb[i]));
            const float scale = amax / 127.0f, inv = scale ? 1.0f / scale : 0.0f;
            int half[2] = {0, 0};
            for (int i = 0; i < QK; i++) {
                qb[i] = (int8_t)lrintf(xb[i] * inv);
                half[i / 16] += qb[i];
            }
            const int sum = half[0] + half[1];
#endif
            h[(m * nb + b) * 2] = half[0];
            h[(m * nb + b) * 2 + 1] = half[1];
            d[m * nb + b] = scale;
            s[m * nb + b] = scale * (float)sum;
        }
    }
}

/* Where a 4/5-bit block's nibbles start, and its min as a multiple of its scale when it has
 * no stored min (Q4_0: q - 8, Q5_0: q - 16). */
static inline int nibble_offset(int qtype) {
    return qtype == Q4_0 ? 2 : qtype == Q4_1 ? 4 : qtype == Q5_0 ? 6 : 8;
}

static inline float block_min(int qtype, const uint8_t *wb, float dw) {
    return qtype == Q4_1 || qtype == Q5_1 ? load_half(wb + 2) : qtype == Q4_0 ? -8 * dw : -16 * dw;
}

/* The unsigned values of a Q4_0/Q4_1 (0..15) or Q5_0/Q5_1 (0..31) block. */
static inline void unpack_block(int qtype, const uint8_t *wb, uint8_t *v) {
    const uint8_t *qs = wb + nibble_offset(qtype);
    uint32_t h = 0;
    if (qtype == Q5_0 || qtype == Q5_1) memcpy(&h, qs - 4, 4);
    for (int i = 0; i < 16; i++) {
        v[i] = (uint8_t)((qs[i] & 15) | (((h >> i) & 1) << 4));
        v[i + 16] = (uint8_t)((qs[i] >> 4) | (((h >> (i + 16)) & 1) << 4));
    }
}

#ifdef VIBE_SIMD
static inline __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m4), _mm_and_si128(b, m4));
}

/* The unsigned values (0..15, or 0..31 for Q5) of a Q4_0/Q4_1/Q5_0/Q5_1 block. */
static inline __m256i unpack_q45(int qtype, const uint8_t *wb) {
    const __m256i v = unpack_nibbles(wb + nibble_offset(qtype));
    if (qtype == Q5_0 || qtype == Q5_1)
        return _mm256_or_si256(v, fifth_bits(wb + nibble_offset(qtype) - 4));
    return v;
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
        const float dw = load_half(wb);
        if (qtype == Q8_0) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(wb + 2));
            const __m256i aw = _mm256_sign_epi8(wv, wv);
            for (int m = 0; m < mt; m++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(q + m * K + b * QK));
                const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(aw, _mm256_sign_epi8(xv, wv)));
                acc[m] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * d[m * nb + b]), acc[m]);
            }
        } else {
            const float mw = block_min(qtype, wb, dw);
            const __m256i wv = unpack_q45(qtype, wb);
            for (int m = 0; m < mt; m++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(q + m * K + b * QK));
                const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(wv, xv));
                acc[m] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * d[m * nb + b]), acc[m]);
                mins[m] += mw * s[m * nb + b];
            }
        }
    }
    for (int m = 0; m < mt; m++) res[m] = vibe_hsum8(acc[m]) + mins[m];
#else
    float acc[MT] = {0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * bb;
        const float dw = load_half(wb);
        uint8_t v[QK];
        if (qtype != Q8_0) unpack_block(qtype, wb, v);
        for (int m = 0; m < mt; m++) {
            const int8_t *xb = q + m * K + b * QK;
            int dot = 0;
            if (qtype == Q8_0) {
                const int8_t *qs = (const int8_t *)(wb + 2);
                for (int i = 0; i < QK; i++) dot += qs[i] * xb[i];
            } else {
                for (int i = 0; i < QK; i++) dot += v[i] * xb[i];
                mins[m] += block_min(qtype, wb, dw) * s[m * nb + b];
            }
            acc[m] += (float)dot * dw * d[m * nb + b];
        }
    }
    for (int m = 0; m < mt; m++) res[m] = acc[m] + mins[m];
#endif
}

/* ---- The row-range API (cpu_quant.h): what vibe_qlinear and the fused decode step share. */

int vibe_qtype_ok(int qtype, int64_t K) {
    if (qtype & VIBE_PACKED)
        return vibe_tile_type(qtype & ~VIBE_PACKED) && K % block_values(qtype & ~VIBE_PACKED) == 0;
    return block_bytes(qtype) && K % block_values(qtype) == 0;
}

int vibe_qalign(int qtype) { return qtype & VIBE_PACKED ? TILE : 1; }

int64_t vibe_qact_bytes(int64_t M, int64_t K) {
    return M * K + (M * (K / QK)) * (int64_t)(sizeof(float) * 2 + sizeof(int32_t) * 2);
}

/* The activation buffer (layout in cpu_quant_impl.h). */
void vibe_qact(const float *x, int64_t ldx, int64_t M, int64_t K, void *act) {
    int8_t *q = act;
    float *d = (float *)(q + M * K);
    quantize_rows(x, ldx, M, K, q, d, d + M * (K / QK), (int32_t *)(d + 2 * M * (K / QK)));
}

/* out[m, n] for n in [n0, n1) (one thread; the caller splits rows between threads). */
void vibe_qdot_rows(int qtype, const uint8_t *w, int64_t ldw, const void *act, int64_t M,
                    int64_t K, float *out, int64_t ldo, int64_t n0, int64_t n1) {
    const int64_t nb = K / QK;
    const int8_t *q = act;
    const float *d = (const float *)(q + M * K), *s = d + M * nb;
    if (qtype & VIBE_PACKED) {
        vibe_tile_rows(qtype & ~VIBE_PACKED, w, ldw, act, M, K, out, ldo, n0, n1);
        return;
    }
    if (vibe_kq_block_bytes(qtype)) {
        vibe_kq_rows(qtype, w, ldw, q, d, s, M, K, out, ldo, n0, n1);
        return;
    }
    /* Constant type (and a constant single row for decode) so each loop is specialised. */
#define ROW_Q40(...) row_dot(Q4_0, __VA_ARGS__)
#define ROW_Q41(...) row_dot(Q4_1, __VA_ARGS__)
#define ROW_Q50(...) row_dot(Q5_0, __VA_ARGS__)
#define ROW_Q51(...) row_dot(Q5_1, __VA_ARGS__)
#define ROW_Q80(...) row_dot(Q8_0, __VA_ARGS__)
    switch (qtype) {
        case Q4_0: VIBE_QRANGE(ROW_Q40) break;
        case Q4_1: VIBE_QRANGE(ROW_Q41) break;
        case Q5_0: VIBE_QRANGE(ROW_Q50) break;
        case Q5_1: VIBE_QRANGE(ROW_Q51) break;
        default: VIBE_QRANGE(ROW_Q80) break;
    }
}

/* out [M, N] (row stride ldo) = x [M, K] @ dequant(w [N, K]).T. Returns 0, or -1 for an
 * unsupported type or K not a whole number of blocks (the caller then dequantizes). */
int vibe_qlinear(int qtype, const uint8_t *w, int64_t ldw, const float *x, int64_t ldx,
                 float *out, int64_t ldo, int64_t M, int64_t N, int64_t K) {
    if (!vibe_qtype_ok(qtype, K) || M < 1 || N % vibe_qalign(qtype)) return -1;
    void *act = malloc((size_t)vibe_qact_bytes(M, K));
    if (!act) return -1;
    vibe_qact(x, ldx, M, K, act);
#pragma omp parallel
    {
        int64_t n0, n1;
        vibe_split_aligned(N, vibe_qalign(qtype), &n0, &n1);
        vibe_qdot_rows(qtype, w, ldw, act, M, K, out, ldo, n0, n1);
    }
    free(act);
    return 0;
}

/* One row of K values of a 32-value block type. */
static void dequant_row(int qtype, const uint8_t *w, float *o, int64_t K) {
    const int bb = block_bytes(qtype);
    for (int64_t b = 0; b < K / QK; b++, o += QK) {
        const uint8_t *wb = w + b * bb;
        const float dw = load_half(wb);
#ifdef VIBE_SIMD
        { /* the same values as below, eight at a time (prefill dequantises whole matrices) */
            uint8_t v[QK];
            _mm256_storeu_si256((__m256i *)v, qtype == Q8_0
                                                  ? _mm256_loadu_si256((const __m256i *)(wb + 2))
                                                  : unpack_q45(qtype, wb));
            const int with_min = qtype == Q4_1 || qtype == Q5_1;
            const __m256 vd = _mm256_set1_ps(dw);
            const __m256 vm = _mm256_set1_ps(with_min ? load_half(wb + 2) : 0.0f);
            const __m256i off = _mm256_set1_epi32(qtype == Q4_0 ? 8 : qtype == Q5_0 ? 16 : 0);
            for (int i = 0; i < QK; i += 8) {
                const __m128i bytes = _mm_loadl_epi64((const __m128i *)(v + i));
                const __m256i vi = qtype == Q8_0
                                       ? _mm256_cvtepi8_epi32(bytes)
                                       : _mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), off);
                const __m256 f = _mm256_cvtepi32_ps(vi);
                _mm256_storeu_ps(o + i, with_min ? _mm256_fmadd_ps(vd, f, vm) : _mm256_mul_ps(vd, f));
            }
            continue;
        }
#endif
        if (qtype == Q8_0) {
            const int8_t *qs = (const int8_t *)(wb + 2);
            for (int i = 0; i < QK; i++) o[i] = dw * qs[i];
            continue;
        }
        uint8_t v[QK];
        unpack_block(qtype, wb, v);
        if (qtype == Q4_0 || qtype == Q5_0) { /* gguf-py: d * (q - 8 or 16) */
            const int off = qtype == Q4_0 ? 8 : 16;
            for (int i = 0; i < QK; i++) o[i] = dw * (v[i] - off);
        } else {
            const float mw = load_half(wb + 2);
            for (int i = 0; i < QK; i++) o[i] = dw * v[i] + mw;
        }
    }
}

/* Row n of a packed matrix in its stored bytes. */
static void unpack_row(int qtype, const uint8_t *w, int64_t ldw, int64_t n, int64_t K,
                       uint8_t *out) {
    const int base = qtype & ~VIBE_PACKED, bb = block_bytes(base);
    for (int64_t b = 0; b < K / block_values(base); b++)
        vibe_tile_block(base, w, ldw, n, b, out + b * bb);
}

/* out [n, stored bytes per row] = rows ids[0..n) of a packed matrix, as stored. */
int vibe_unpack_rows(int qtype, const uint8_t *w, int64_t ldw, const int64_t *ids, int64_t n,
                     int64_t K, uint8_t *out) {
    if (!(qtype & VIBE_PACKED) || !vibe_qtype_ok(qtype, K)) return -1;
    const int base = qtype & ~VIBE_PACKED;
    const int64_t row = K / block_values(base) * block_bytes(base);
    for (int64_t i = 0; i < n; i++) unpack_row(qtype, w, ldw, ids[i], K, out + i * row);
    return 0;
}

/* out [N, K] fp32 = the values of w [N, K]. Returns -1 for an unsupported type. */
int vibe_dequant(int qtype, const uint8_t *w, int64_t ldw, float *out, int64_t ldo, int64_t N,
                 int64_t K) {
    if (!vibe_qtype_ok(qtype, K)) return -1;
    const int k = vibe_kq_block_bytes(qtype & ~VIBE_PACKED) != 0;
    if (qtype & VIBE_PACKED) {
        const int base = qtype & ~VIBE_PACKED;
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < N; n++)
            for (int64_t b = 0, per = block_values(base); b < K / per; b++) {
                uint8_t block[256]; /* a block or K-quant super-block as stored */
                vibe_tile_block(base, w, ldw, n, b, block);
                if (k)
                    vibe_kq_dequant_row(base, block, out + n * ldo + b * per, per);
                else
                    dequant_row(base, block, out + n * ldo + b * per, per);
            }
        return 0;
    }
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        if (k)
            vibe_kq_dequant_row(qtype, w + n * ldw, out + n * ldo, K);
        else
            dequant_row(qtype, w + n * ldw, out + n * ldo, K);
    }
    return 0;
}
