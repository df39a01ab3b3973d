/* Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 weights repacked at load into tiles of TILE rows ("packed"
 * types, qtype | VIBE_PACKED), so that one SIMD lane holds one output row: no horizontal sums,
 * and each decoded weight block serves every activation row of a step.
 *
 * Layout (llama.cpp repacks Q4_0 alike for its AVX/NEON GEMM): the TILE rows of tile t occupy
 * exactly the bytes that rows [TILE t, TILE (t + 1)) occupy unpacked (so packing is in place,
 * tile by tile, and a slice on tile boundaries is a view). Within a tile, block b of every row
 * is together, TILE * block-bytes from the tile's start:
 *   d[TILE] fp16; (Q4_1, Q5_1) m[TILE] fp16; (Q5) eight 32-bit masks of fifth bits (put_fifth);
 *   the quants in 4-byte chunks: chunk c of rows 0..TILE-1 (TILE * 4 bytes), for c < 4 (16
 *   bytes of nibbles) or c < 8 (Q8_0). Chunk c of a 4/5-bit row holds values 4c..4c+3 (low
 *   nibbles) and 16+4c..16+4c+3 (high nibbles).
 *
 * Per tile, block and activation row: two 8-lane integer dot products per chunk against the
 * activation's 4 bytes broadcast (u8 weights x i8 activations), one FMA with d * dx and one
 * with the min m (Q4_0: -8 d, Q5_0: -16 d) times the activation block's s = dx * sum(q).
 * Q8_0 with VNNI flips the sign bit (u = q + 128, so u8 x i8 applies) and takes -128 d as its
 * min; without VNNI it takes |w| * sign(x, w) (maddubs saturates at 255 * 127 * 2).
 * Each output is computed by the same operations whatever M is. */
#include "cpu_quant_impl.h"

static inline int is_k(int qtype) { return qtype == Q4_K || qtype == Q5_K || qtype == Q6_K; }

/* 1 when the tiles run SIMD code here; without it they go back through the row kernel and
 * are only slower, so the loader keeps stored rows (cpu_quant.packable). */
int vibe_tiles_simd(void) {
#ifdef VIBE_SIMD
    return 1;
#else
    return 0;
#endif
}

int vibe_tile_type(int qtype) {
    return qtype == Q4_0 || qtype == Q4_1 || qtype == Q5_0 || qtype == Q5_1 || qtype == Q8_0 ||
           is_k(qtype);
}

static inline int tile_block_bytes(int qtype) {
    switch (qtype) {
        case Q4_0: return 18;
        case Q4_1: return 20;
        case Q5_0: return 22;
        case Q5_1: return 24;
        default: return 34;
    }
}

/* A block's fp16 fields (d, and m) in bytes, whether it has Q5's fifth bits, and its chunks. */
static inline int halves_bytes(int qtype) { return qtype == Q4_1 || qtype == Q5_1 ? 4 : 2; }
static inline int has_fifth(int qtype) { return qtype == Q5_0 || qtype == Q5_1; }
static inline int chunks(int qtype) { return qtype == Q8_0 ? 8 : 4; }
/* Where a tile-block's masks and quants start. */
static inline int masks_at(int qtype) { return halves_bytes(qtype) * TILE; }
static inline int quants_at(int qtype) { return masks_at(qtype) + (has_fifth(qtype) ? 32 : 0); }

/* Mask k = 2c + h of a Q5 tile-block: bit 4r + j = the fifth bit of value 16h + 4c + j of row r,
 * so that one 32-bit mask gives the fifth bits of chunk c's low (h = 0) or high nibbles. */
static inline void put_fifth(uint32_t *masks, uint32_t qh, int r) {
    for (int k = 0; k < 8; k++) masks[k] |= ((qh >> (16 * (k & 1) + 4 * (k >> 1))) & 15u) << (4 * r);
}

static inline uint32_t get_fifth(const uint8_t *masks, int r) {
    uint32_t qh = 0;
    for (int k = 0; k < 8; k++) {
        uint32_t mk;
        memcpy(&mk, masks + 4 * k, 4);
        qh |= ((mk >> (4 * r)) & 15u) << (16 * (k & 1) + 4 * (k >> 1));
    }
    return qh;
}

int64_t vibe_packed_row_bytes(int qtype, int64_t K) {
    return is_k(qtype) ? vibe_ktile_row_bytes(qtype, K) : K / QK * tile_block_bytes(qtype);
}

/* Repack the N (a multiple of TILE) contiguous stored rows of src into dst (rows of
 * vibe_packed_row_bytes; dst may be src when those equal the stored rows' bytes: then in place,
 * tile by tile). 0, or -1 when out of memory. */
int vibe_pack(int qtype, const uint8_t *src, int64_t N, int64_t K, uint8_t *dst) {
    const int64_t ld = K / (is_k(qtype) ? QK_K : QK) * (is_k(qtype) ? vibe_kq_block_bytes(qtype)
                                                                    : tile_block_bytes(qtype));
    const int64_t ldd = vibe_packed_row_bytes(qtype, K);
    uint8_t *rows = malloc((size_t)(TILE * ld));
    if (!rows) return -1;
    for (int64_t t = 0; t < N / TILE; t++) {
        memcpy(rows, src + t * TILE * ld, (size_t)(TILE * ld));
        uint8_t *tile = dst + t * TILE * ldd;
        if (is_k(qtype)) {
            for (int64_t sb = 0; sb < K / QK_K; sb++)
                vibe_ktile_pack(qtype, rows, ld, sb, tile + sb * TILE * (ldd / (K / QK_K)));
            continue;
        }
        const int bb = tile_block_bytes(qtype), hb = halves_bytes(qtype), q5 = has_fifth(qtype);
        for (int64_t b = 0; b < K / QK; b++) {
            uint8_t *o = tile + b * TILE * bb;
            uint32_t masks[8] = {0};
            for (int r = 0; r < TILE; r++) {
                const uint8_t *blk = rows + r * ld + b * bb, *qs = blk + hb + 4 * q5;
                for (int h = 0; h < hb; h += 2) memcpy(o + h * TILE + 2 * r, blk + h, 2);
                if (q5) {
                    uint32_t qh;
                    memcpy(&qh, blk + hb, 4);
                    put_fifth(masks, qh, r);
                }
                for (int c = 0; c < chunks(qtype); c++)
                    memcpy(o + quants_at(qtype) + c * 4 * TILE + 4 * r, qs + 4 * c, 4);
            }
            if (q5) memcpy(o + masks_at(qtype), masks, sizeof masks);
        }
    }
    free(rows);
    return 0;
}

/* The unpacked (GGUF) bytes of block b of row n. */
void vibe_tile_block(int qtype, const uint8_t *w, int64_t ldw, int64_t n, int64_t b,
                     uint8_t *out) {
    if (is_k(qtype)) {
        const int64_t r = n % TILE, sbb = vibe_ktile_row_bytes(qtype, QK_K);
        vibe_ktile_block(qtype, w + (n - r) * ldw + b * TILE * sbb, (int)r, out);
        return;
    }
    const int bb = tile_block_bytes(qtype), hb = halves_bytes(qtype), q5 = has_fifth(qtype);
    const int r = (int)(n % TILE);
    const uint8_t *o = w + (n - r) * ldw + b * TILE * bb;
    for (int h = 0; h < hb; h += 2) memcpy(out + h, o + h * TILE + 2 * r, 2);
    if (q5) {
        const uint32_t qh = get_fifth(o + masks_at(qtype), r);
        memcpy(out + hb, &qh, 4);
    }
    for (int c = 0; c < chunks(qtype); c++)
        memcpy(out + hb + 4 * q5 + 4 * c, o + quants_at(qtype) + c * 4 * TILE + 4 * r, 4);
}

#ifdef VIBE_SIMD
/* One tile (TILE rows) against mt activation rows: acc[m] lane r = out[m, row r]. */
static inline __attribute__((always_inline)) void tile_dot(
    int qtype, const uint8_t *wt, const int8_t *q, const float *d, const float *s, int64_t K,
    int mt, __m256 *acc) {
    const int64_t nb = K / QK;
    const int bb = tile_block_bytes(qtype);
    for (int m = 0; m < mt; m++) acc[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *o = wt + b * TILE * bb;
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)o));
        if (qtype == Q8_0) {
            __m256i wv[8];
            for (int c = 0; c < 8; c++)
                wv[c] = _mm256_loadu_si256((const __m256i *)(o + 16 + 32 * c));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
            const __m256 mw = _mm256_mul_ps(dw, _mm256_set1_ps(-128.0f));
            for (int c = 0; c < 8; c++) wv[c] = _mm256_xor_si256(wv[c], _mm256_set1_epi8(-128));
            for (int m = 0; m < mt; m++) {
                const int8_t *xb = q + m * K + b * QK;
                __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
                for (int c = 0; c < 8; c += 2) {
                    i0 = vibe_dot_acc(i0, wv[c], vibe_bcast4(xb + 4 * c));
                    i1 = vibe_dot_acc(i1, wv[c + 1], vibe_bcast4(xb + 4 * c + 4));
                }
                const __m256 f = _mm256_cvtepi32_ps(_mm256_add_epi32(i0, i1));
                acc[m] = _mm256_fmadd_ps(f, _mm256_mul_ps(dw, _mm256_set1_ps(d[m * nb + b])), acc[m]);
                acc[m] = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[m * nb + b]), acc[m]);
            }
#else
            __m256i aw[8];
            for (int c = 0; c < 8; c++) aw[c] = _mm256_sign_epi8(wv[c], wv[c]);
            for (int m = 0; m < mt; m++) {
                const int8_t *xb = q + m * K + b * QK;
                __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
                for (int c = 0; c < 8; c += 2) {
                    i0 = vibe_dot_acc(i0, aw[c], _mm256_sign_epi8(vibe_bcast4(xb + 4 * c), wv[c]));
                    i1 = vibe_dot_acc(i1, aw[c + 1], _mm256_sign_epi8(vibe_bcast4(xb + 4 * c + 4), wv[c + 1]));
                }
                const __m256 f = _mm256_cvtepi32_ps(_mm256_add_epi32(i0, i1));
                acc[m] = _mm256_fmadd_ps(f, _mm256_mul_ps(dw, _mm256_set1_ps(d[m * nb + b])), acc[m]);
            }
#endif
        } else {
            const __m256 mw =
                qtype == Q4_1 || qtype == Q5_1
                    ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(o + 2 * TILE)))
                    : _mm256_mul_ps(dw, _mm256_set1_ps(qtype == Q4_0 ? -8.0f : -16.0f));
            const __m256i m4 = _mm256_set1_epi8(0x0f);
            __m256i lo[4], hi[4];
            for (int c = 0; c < 4; c++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(o + quants_at(qtype) + 32 * c));
                lo[c] = _mm256_and_si256(v, m4);
                hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if (has_fifth(qtype)) {
                    lo[c] = _mm256_or_si256(lo[c], fifth_bits(o + masks_at(qtype) + 8 * c));
                    hi[c] = _mm256_or_si256(hi[c], fifth_bits(o + masks_at(qtype) + 8 * c + 4));
                }
            }
            for (int m = 0; m < mt; m++) {
                const int8_t *xb = q + m * K + b * QK;
                __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
                for (int c = 0; c < 4; c++) {
                    i0 = vibe_dot_acc(i0, lo[c], vibe_bcast4(xb + 4 * c));
                    i1 = vibe_dot_acc(i1, hi[c], vibe_bcast4(xb + 16 + 4 * c));
                }
                const __m256 f = _mm256_cvtepi32_ps(_mm256_add_epi32(i0, i1));
                acc[m] = _mm256_fmadd_ps(f, _mm256_mul_ps(dw, _mm256_set1_ps(d[m * nb + b])), acc[m]);
                acc[m] = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[m * nb + b]), acc[m]);
            }
        }
    }
}

/* Tiles [t0, t1) against all M rows. */
static inline __attribute__((always_inline)) void tile_range(
    int qtype, const uint8_t *w, int64_t ldw, const int8_t *q, const float *d, const float *s,
    int64_t M, int64_t K, float *out, int64_t ldo, int64_t t0, int64_t t1) {
    const int64_t nb = K / QK;
#define DOT(wt, m0, mt, acc) tile_dot(qtype, wt, q + (m0) * K, d + (m0) * nb, s + (m0) * nb, K, mt, acc)
    VIBE_TILE_RANGE(DOT)
#undef DOT
}
#endif

/* out[m * ldo + n] for n in [n0, n1) (multiples of TILE), every m < M; `act` as vibe_qact's. */
void vibe_tile_rows(int qtype, const uint8_t *w, int64_t ldw, const void *act, int64_t M,
                    int64_t K, float *out, int64_t ldo, int64_t n0, int64_t n1) {
#ifdef VIBE_SIMD
    const int64_t nb = K / QK;
    const int8_t *q = act;
    const float *d = (const float *)(q + M * K), *s = d + M * nb;
    const int64_t t0 = n0 / TILE, t1 = n1 / TILE;
    switch (qtype) { /* a constant type so each loop is specialised */
        case Q4_0: tile_range(Q4_0, w, ldw, q, d, s, M, K, out, ldo, t0, t1); break;
        case Q4_1: tile_range(Q4_1, w, ldw, q, d, s, M, K, out, ldo, t0, t1); break;
        case Q5_0: tile_range(Q5_0, w, ldw, q, d, s, M, K, out, ldo, t0, t1); break;
        case Q5_1: tile_range(Q5_1, w, ldw, q, d, s, M, K, out, ldo, t0, t1); break;
        case Q8_0: tile_range(Q8_0, w, ldw, q, d, s, M, K, out, ldo, t0, t1); break;
        default: vibe_ktile_rows(qtype, w, ldw, q, d, s, (const int32_t *)(s + M * nb), M, K, out, ldo, n0, n1);
    }
#else
    /* Plain C: each row back in its stored blocks, through the row-by-row kernel. */
    const int per = is_k(qtype) ? QK_K : QK;
    const int bb = is_k(qtype) ? vibe_kq_block_bytes(qtype) : tile_block_bytes(qtype);
    uint8_t *row = malloc((size_t)(K / per * bb));
    if (!row) { /* out of memory: NaN rows, never stale ones */
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = n0; n < n1; n++) out[m * ldo + n] = NAN;
        return;
    }
    for (int64_t n = n0; n < n1; n++) {
        for (int64_t b = 0; b < K / per; b++) vibe_tile_block(qtype, w, ldw, n, b, row + b * bb);
        vibe_qdot_rows(qtype, row, 0, act, M, K, out + n, ldo, 0, 1);
    }
    free(row);
#endif
}
