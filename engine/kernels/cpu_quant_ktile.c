/* Q4_K, Q5_K and Q6_K weights in tiles of TILE rows (the K-quant half of cpu_quant_tile.c): one SIMD
 * lane per output row, and 256-value super-blocks rearranged so that every 32-value activation
 * block is one integer dot product per lane.
 *
 * Q4_K tile super-block (TILE * 148 bytes; stored rows take 144: the 6-bit scales and mins are
 * kept as bytes, sc[j][r] and mn[j][r], so a lane's scale is one widening load):
 *   d[TILE] fp16, dmin[TILE] fp16, sc[8][TILE], mn[8][TILE], then for each pair k of sub-blocks
 *   (2k: low nibbles, 2k+1: high nibbles of 32 stored bytes) eight chunks c of TILE * 4 bytes:
 *   bytes 4c..4c+3 of the pair, i.e. values 4c..4c+3 of both sub-blocks.
 *   w = d * sc_j * q - dmin * mn_j: an FMA with d sc_j dx and one with dmin mn_j times s.
 * Q5_K (TILE * 180 bytes; stored 176): as Q4_K, with the fifth bits between the mins and the
 *   nibbles: eight chunks of TILE * 4 bytes of qh (bit 2k / 2k + 1 of byte l: value l of
 *   sub-block 2k / 2k + 1).
 * Q6_K tile super-block (TILE * 210 bytes, as stored): d[TILE] fp16, sc[16][TILE] int8, then
 *   per 32-value block j: four chunks of low nibbles laid out as Q4_0's (values 4c+b low,
 *   16+4c+b high), then H0 and H1 (TILE * 4 bytes each): byte b of a lane holds the top two
 *   bits of values 4c+b (H0) or 16+4c+b (H1) for c = 0..3 at bits 4-5, 6-7, 0-1, 2-3, so
 *   chunk c's are one shift and one mask away from bits 4-5. Values u = q + 32 in 0..63:
 *   sum w x = d dx (sc_lo (dot_lo - 32 h_lo) + sc_hi (dot_hi - 32 h_hi)), all in integers but
 *   the last product (h: the activation's sums of 16 values, cpu_quant_impl.h). */
#include "cpu_quant_impl.h"

int vibe_ktile_row_bytes(int qtype, int64_t K) {
    return (int)(K / QK_K * (qtype == Q4_K ? 148 : qtype == Q5_K ? 180 : qtype == Q6_K ? 210 : 0));
}

/* Where a Q4_K / Q5_K tile super-block's nibbles start (Q5_K's qh chunks sit before them). */
static inline int qs_at(int qtype) { return qtype == Q5_K ? 416 : 160; }

static const int H_POS[4] = {4, 6, 0, 2}; /* where chunk c's top bits sit in a byte of H */

/* ggml's 12-byte packing of eight 6-bit scales and mins (get_scale_min_k4's inverse). */
static void pack_scales_k4(const uint8_t *sc, const uint8_t *mn, uint8_t *q) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        q[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        q[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
}

static void unpack_scales_k4(const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(j < 4 ? q[j] & 63 : (q[j + 4] & 15) | (q[j - 4] >> 6) << 4);
        mn[j] = (uint8_t)(j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }
}

/* Q6_K's 256 values u = q + 32 (0..63) from ql / qh, and back. */
static void q6_values(const uint8_t *b, uint8_t *u) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *ql = b + 64 * h, qh = b[128 + 32 * h + l];
            uint8_t *o = u + 128 * h;
            o[l] = (uint8_t)((ql[l] & 15) | (qh & 3) << 4);
            o[l + 32] = (uint8_t)((ql[l + 32] & 15) | ((qh >> 2) & 3) << 4);
            o[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh >> 4) & 3) << 4);
            o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh >> 6) & 3) << 4);
        }
}

static void q6_store(const uint8_t *u, uint8_t *b) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *o = u + 128 * h;
            b[64 * h + l] = (uint8_t)((o[l] & 15) | (o[l + 64] & 15) << 4);
            b[64 * h + l + 32] = (uint8_t)((o[l + 32] & 15) | (o[l + 96] & 15) << 4);
            b[128 + 32 * h + l] = (uint8_t)(o[l] >> 4 | (o[l + 32] >> 4) << 2 |
                                            (o[l + 64] >> 4) << 4 | (o[l + 96] >> 4) << 6);
        }
}

/* Tile t's super-block sb from TILE stored rows (`rows`, ld bytes apart) into `o`. */
void vibe_ktile_pack(int qtype, const uint8_t *rows, int64_t ld, int64_t sb, uint8_t *o) {
    for (int r = 0; r < TILE; r++) {
        const uint8_t *b = rows + r * ld + sb * vibe_kq_block_bytes(qtype);
        if (qtype != Q6_K) {
            const int q5 = qtype == Q5_K, qs = q5 ? 48 : 16; /* stored: qh[32] before qs */
            uint8_t sc[8], mn[8];
            memcpy(o + 2 * r, b, 2);
            memcpy(o + 16 + 2 * r, b + 2, 2);
            unpack_scales_k4(b + 4, sc, mn);
            for (int j = 0; j < 8; j++) o[32 + 8 * j + r] = sc[j], o[96 + 8 * j + r] = mn[j];
            for (int c = 0; c < 8 * q5; c++) memcpy(o + 160 + 32 * c + 4 * r, b + 16 + 4 * c, 4);
            for (int k = 0; k < 4; k++)
                for (int c = 0; c < 8; c++)
                    memcpy(o + qs_at(qtype) + 256 * k + 32 * c + 4 * r, b + qs + 32 * k + 4 * c, 4);
            continue;
        }
        uint8_t u[QK_K];
        q6_values(b, u);
        memcpy(o + 2 * r, b + 208, 2);
        for (int i = 0; i < 16; i++) o[16 + 8 * i + r] = b[192 + i];
        for (int j = 0; j < 8; j++) {
            uint8_t *blk = o + 144 + 192 * j;
            const uint8_t *v = u + 32 * j;
            for (int c = 0; c < 4; c++)
                for (int i = 0; i < 4; i++) {
                    blk[32 * c + 4 * r + i] = (uint8_t)((v[4 * c + i] & 15) | (v[16 + 4 * c + i] & 15) << 4);
                    if (c == 0) blk[128 + 4 * r + i] = blk[160 + 4 * r + i] = 0;
                    blk[128 + 4 * r + i] |= (uint8_t)((v[4 * c + i] >> 4) << H_POS[c]);
                    blk[160 + 4 * r + i] |= (uint8_t)((v[16 + 4 * c + i] >> 4) << H_POS[c]);
                }
        }
    }
}

/* The stored bytes of super-block sb of row r of the tile at `o` (its super-block sb start). */
void vibe_ktile_block(int qtype, const uint8_t *o, int r, uint8_t *b) {
    if (qtype != Q6_K) {
        const int q5 = qtype == Q5_K, qs = q5 ? 48 : 16;
        uint8_t sc[8], mn[8];
        memcpy(b, o + 2 * r, 2);
        memcpy(b + 2, o + 16 + 2 * r, 2);
        for (int j = 0; j < 8; j++) sc[j] = o[32 + 8 * j + r], mn[j] = o[96 + 8 * j + r];
        pack_scales_k4(sc, mn, b + 4);
        for (int c = 0; c < 8 * q5; c++) memcpy(b + 16 + 4 * c, o + 160 + 32 * c + 4 * r, 4);
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < 8; c++)
                memcpy(b + qs + 32 * k + 4 * c, o + qs_at(qtype) + 256 * k + 32 * c + 4 * r, 4);
        return;
    }
    uint8_t u[QK_K];
    for (int j = 0; j < 8; j++) {
        const uint8_t *blk = o + 144 + 192 * j;
        uint8_t *v = u + 32 * j;
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 4; i++) {
                const uint8_t lo = blk[32 * c + 4 * r + i];
                v[4 * c + i] = (uint8_t)((lo & 15) | ((blk[128 + 4 * r + i] >> H_POS[c]) & 3) << 4);
                v[16 + 4 * c + i] = (uint8_t)((lo >> 4) | ((blk[160 + 4 * r + i] >> H_POS[c]) & 3) << 4);
            }
    }
    q6_store(u, b);
    for (int i = 0; i < 16; i++) b[192 + i] = o[16 + 8 * i + r];
    memcpy(b + 208, o + 2 * r, 2);
}

#ifdef VIBE_SIMD
static inline __m256 u8x8_ps(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* Chunk c's top two bits (of H) at bits 4-5 of each byte. */
static inline __m256i top_bits(__m256i h, int c) {
    const __m256i m = _mm256_set1_epi8(0x30);
    switch (c) {
        case 0: return _mm256_and_si256(h, m);
        case 1: return _mm256_and_si256(_mm256_srli_epi16(h, 2), m);
        case 2: return _mm256_and_si256(_mm256_slli_epi16(h, 4), m);
        default: return _mm256_and_si256(_mm256_slli_epi16(h, 2), m);
    }
}

/* One tile (TILE rows, its super-blocks at wt) against mt activation rows: acc[m] lane r. */
static inline __attribute__((always_inline)) void ktile_dot(
    int qtype, const uint8_t *wt, const int8_t *q, const float *d, const float *s,
    const int32_t *h, int64_t K, int mt, __m256 *acc) {
    const int64_t nb = K / QK;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int m = 0; m < mt; m++) acc[m] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < K / QK_K; sb++) {
        const int64_t a0 = sb * 8; /* the super-block's first activation block */
        if (qtype != Q6_K) {
            const uint8_t *o = wt + sb * TILE * (qtype == Q5_K ? 180 : 148);
            const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)o));
            const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(o + 16)));
            for (int k = 0; k < 4; k++) {
                __m256i lo[8], hi[8];
                for (int c = 0; c < 8; c++) {
                    const __m256i v =
                        _mm256_loadu_si256((const __m256i *)(o + qs_at(qtype) + 256 * k + 32 * c));
                    lo[c] = _mm256_and_si256(v, m4);
                    hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                    if (qtype == Q5_K) { /* bits 2k, 2k + 1 of each qh byte, to bit 4 */
                        const __m256i qh = _mm256_srli_epi16(
                            _mm256_loadu_si256((const __m256i *)(o + 160 + 32 * c)), 2 * k);
                        const __m256i one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
                        lo[c] = _mm256_or_si256(lo[c], _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                        hi[c] = _mm256_or_si256(hi[c], _mm256_slli_epi16(_mm256_and_si256(qh, two), 3));
                    }
                }
                const __m256 dsc0 = _mm256_mul_ps(dv, u8x8_ps(o + 32 + 16 * k));
                const __m256 dsc1 = _mm256_mul_ps(dv, u8x8_ps(o + 40 + 16 * k));
                const __m256 dm0 = _mm256_mul_ps(dmin, u8x8_ps(o + 96 + 16 * k));
                const __m256 dm1 = _mm256_mul_ps(dmin, u8x8_ps(o + 104 + 16 * k));
                for (int m = 0; m < mt; m++) {
                    const int64_t a = m * nb + a0 + 2 * k;
                    const int8_t *xa = q + m * K + (a0 + 2 * k) * QK;
                    __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
                    for (int c = 0; c < 8; c++) {
                        i0 = vibe_dot_acc(i0, lo[c], vibe_bcast4(xa + 4 * c));
                        i1 = vibe_dot_acc(i1, hi[c], vibe_bcast4(xa + QK + 4 * c));
                    }
                    __m256 r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0),
                                               _mm256_mul_ps(dsc0, _mm256_set1_ps(d[a])), acc[m]);
                    r = _mm256_fnmadd_ps(dm0, _mm256_set1_ps(s[a]), r);
                    r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1),
                                        _mm256_mul_ps(dsc1, _mm256_set1_ps(d[a + 1])), r);
                    acc[m] = _mm256_fnmadd_ps(dm1, _mm256_set1_ps(s[a + 1]), r);
                }
            }
            continue;
        }
        const uint8_t *o = wt + sb * TILE * 210;
        const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)o));
        for (int j = 0; j < 8; j++) {
            const uint8_t *blk = o + 144 + 192 * j;
            const __m256i h0 = _mm256_loadu_si256((const __m256i *)(blk + 128));
            const __m256i h1 = _mm256_loadu_si256((const __m256i *)(blk + 160));
            __m256i lo[4], hi[4];
            for (int c = 0; c < 4; c++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 32 * c));
                lo[c] = _mm256_or_si256(_mm256_and_si256(v, m4), top_bits(h0, c));
                hi[c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), top_bits(h1, c));
            }
            const __m256i sc0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(o + 16 + 16 * j)));
            const __m256i sc1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(o + 24 + 16 * j)));
            for (int m = 0; m < mt; m++) {
                const int64_t a = m * nb + a0 + j;
                const int8_t *x = q + m * K + (a0 + j) * QK;
                __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
                for (int c = 0; c < 4; c++) {
                    i0 = vibe_dot_acc(i0, lo[c], vibe_bcast4(x + 4 * c));
                    i1 = vibe_dot_acc(i1, hi[c], vibe_bcast4(x + 16 + 4 * c));
                }
                i0 = _mm256_sub_epi32(i0, _mm256_set1_epi32(32 * h[2 * a]));
                i1 = _mm256_sub_epi32(i1, _mm256_set1_epi32(32 * h[2 * a + 1]));
                const __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(i0, sc0), _mm256_mullo_epi32(i1, sc1));
                acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(dv, _mm256_set1_ps(d[a])), acc[m]);
            }
        }
    }
}

/* Tiles [t0, t1) against all M rows. */
static inline __attribute__((always_inline)) void ktile_range(
    int qtype, const uint8_t *w, int64_t ldw, const int8_t *q, const float *d, const float *s,
    const int32_t *h, int64_t M, int64_t K, float *out, int64_t ldo, int64_t t0, int64_t t1) {
    const int64_t nb = K / QK;
#define DOT(wt, m0, mt, acc) \
    ktile_dot(qtype, wt, q + (m0) * K, d + (m0) * nb, s + (m0) * nb, h + 2 * (m0) * nb, K, mt, acc)
    VIBE_TILE_RANGE(DOT)
#undef DOT
}

void vibe_ktile_rows(int qtype, const uint8_t *w, int64_t ldw, const int8_t *q, const float *d,
                     const float *s, const int32_t *h, int64_t M, int64_t K, float *out,
                     int64_t ldo, int64_t n0, int64_t n1) {
    if (qtype == Q4_K)
        ktile_range(Q4_K, w, ldw, q, d, s, h, M, K, out, ldo, n0 / TILE, n1 / TILE);
    else if (qtype == Q5_K)
        ktile_range(Q5_K, w, ldw, q, d, s, h, M, K, out, ldo, n0 / TILE, n1 / TILE);
    else
        ktile_range(Q6_K, w, ldw, q, d, s, h, M, K, out, ldo, n0 / TILE, n1 / TILE);
}
#endif
