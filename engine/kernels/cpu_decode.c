/* The fused CPU decode step: every decoder layer for M tokens (decode, speculative verify, or
 * one token of each of M sequences) in one call and one OpenMP region.
 *
 * Per layer, the same math as engine/layer.py (`run_layers` over `CacheOps`/`BatchOps`):
 *   h = rmsnorm(x) * attn_norm; qkv = h @ wqkv.T; RoPE (rotate-half) on the q and k heads;
 *   k, v -> the row's cache at its position; o = softmax(q k.T / sqrt(D)) v over the row's
 *   positions [lo, pos]; x += o @ wo.T; h = rmsnorm(x) * ffn_norm; g = h @ w13.T;
 *   x += (silu(gate) * up) @ w2.T.
 * The residual stream x [M, dim] is updated in place; the caller applies the final norm and
 * the LM head. A torch step pays for some twenty ops and five kernel calls a layer, each with
 * Python and dispatch overhead that is larger than the arithmetic of a small model's layer;
 * here the threads stay in one parallel region and meet at barriers.
 *
 * Matrices are GGUF blocks of any type cpu_quant runs (vibe_qdot_rows, activations quantized
 * once per product) or fp32 rows (type 0). Rows write all their keys/values before any row
 * attends, so M consecutive positions of one cache form a causal verify step.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_linear.h"
#include "cpu_quant.h"
#include "cpu_simd.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define VIBE_KV_HALF 1 /* fp16 caches: F16C converts on every read and write */
#endif

enum { F32 = 0, WQKV = 0, WO = 1, W13 = 2, W2 = 3 };

enum { PARTS = 3 };

/* Rows of one storage type: a fused matrix (q|k|v, gate|up) may stack parts of different
 * types, as Q4_K_M files store attn_v in Q6_K and attn_q/attn_k in Q4_K. */
typedef struct {
    const void *w;
    int64_t ld;   /* bytes from one row to the next */
    int64_t type; /* GGML type: 0 = F32 */
    int64_t rows; /* 0: unused */
} vibe_part;

typedef struct {
    const float *attn_norm, *ffn_norm;
    vibe_part m[4][PARTS]; /* wqkv, wo, w13, w2 */
} vibe_layer;

typedef struct {
    int64_t n_layers, dim, n_heads, n_kv_heads, head_dim, hidden, max_len;
    double eps;
    const float *cos, *sin; /* [max_len, head_dim] */
    const vibe_layer *layers;
} vibe_model;

/* out[:, first + n0 : first + n1] = x @ rows [n0, n1) of one part. */
static void part_rows(const vibe_part *part, const float *x, const void *act, int64_t M,
                      int64_t K, float *out, int64_t N, int64_t n0, int64_t n1) {
    if (n1 <= n0) return;
    if (part->type == F32)
        vibe_f32_rows(x, K, part->w, part->ld / (int64_t)sizeof(float), out, N, M, K, n0, n1);
    else
        vibe_qdot_rows((int)part->type, part->w, part->ld, act, M, K, out, N, n0, n1);
}

/* x [M, K] into the thread's own `act` when a part of the matrix is quantized (every thread
 * does it: cheaper than a barrier). */
static void quantize_input(const vibe_part *parts, const float *x, void *act, int64_t M,
                           int64_t K) {
    int quantized = 0;
    for (int p = 0; p < PARTS; p++) quantized |= parts[p].rows > 0 && parts[p].type != F32;
    if (quantized) vibe_qact(x, K, M, K, act);
}

/* out [M, N] = x [M, K] @ w.T: this thread's share of each part's rows. */
static void matmul(const vibe_layer *lay, int which, const float *x, void *act, int64_t M,
                   int64_t K, float *out, int64_t N) {
    const vibe_part *parts = lay->m[which];
    quantize_input(parts, x, act, M, K);
    int64_t first = 0;
    for (int p = 0; p < PARTS && parts[p].rows > 0; first += parts[p].rows, p++) {
        int64_t n0, n1;
        vibe_split_aligned(parts[p].rows, vibe_qalign((int)parts[p].type), &n0, &n1);
        part_rows(parts + p, x, act, M, K, out + first, N, n0, n1);
    }
}

/* Rows [a, b) of a matrix stacked from parts (a, b on every part's row alignment). */
static void stacked_rows(const vibe_part *parts, const float *x, const void *act, int64_t M,
                         int64_t K, float *out, int64_t N, int64_t a, int64_t b) {
    int64_t first = 0;
    for (int p = 0; p < PARTS && parts[p].rows > 0; first += parts[p].rows, p++) {
        const int64_t lo = a > first ? a : first, end = first + parts[p].rows;
        part_rows(parts + p, x, act, M, K, out + first, N, lo - first, (b < end ? b : end) - first);
    }
}

static inline float silu(float g) { return g / (1.0f + vibe_expf(-g)); }

/* glu [M, F] = silu(gate) * up with w13 = gate|up [2F, K]: the thread computes the same share
 * of the gate rows and of the up rows (into ffn [M, 2F]) and gates its own columns, so SwiGLU
 * is split between the threads without a barrier of its own. F is a multiple of the parts'
 * row alignment (FusedLayers.build checks). */
static void swiglu(const vibe_layer *lay, const float *x, void *act, int64_t M, int64_t K,
                   int64_t F, float *ffn, float *glu) {
    const vibe_part *parts = lay->m[W13];
    quantize_input(parts, x, act, M, K);
    int64_t align = 1, a, b;
    for (int p = 0; p < PARTS && parts[p].rows > 0; p++) {
        const int64_t part_align = vibe_qalign((int)parts[p].type);
        align = part_align > align ? part_align : align;
    }
    vibe_split_aligned(F, align, &a, &b);
    stacked_rows(parts, x, act, M, K, ffn, 2 * F, a, b);
    stacked_rows(parts, x, act, M, K, ffn, 2 * F, F + a, F + b);
    for (int64_t m = 0; m < M; m++) {
        const float *gate = ffn + m * 2 * F, *up = gate + F;
        float *out = glu + m * F;
#pragma omp simd
        for (int64_t i = a; i < b; i++) out[i] = silu(gate[i]) * up[i];
    }
}

/* RoPE (rotate-half) of one head in place: x[j] cos[j] - x[j + D/2] sin[j] for j < D/2. */
static void rotate(float *x, const float *c, const float *s, int64_t D, float scale) {
    const int64_t half = D / 2;
    for (int64_t j = 0; j < half; j++) {
        const float a = x[j], b = x[j + half];
        x[j] = (a * c[j] - b * s[j]) * scale;
        x[j + half] = (b * c[j + half] + a * s[j + half]) * scale;
    }
}

/* Eight cache values from p (fp32, or fp16 when `half`) as floats; one value. */
#ifdef VIBE_KV_HALF
static inline __m256 load8(const void *p, int64_t i, int half) {
    return half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)))
                : _mm256_loadu_ps((const float *)p + i);
}
static inline float load1(const void *p, int64_t i, int half) {
    return half ? _cvtsh_ss(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}
#else
static inline float load1(const void *p, int64_t i, int half) {
    (void)half; /* fp16 caches are not offered without F16C (vibe_kv_half) */
    return ((const float *)p)[i];
}
#endif

/* scores[t - lo] = dot(q, keys[t]) * scale for t in [lo, hi] (rows of D values). */
static inline __attribute__((always_inline)) void qk_scores(
    const float *q, const void *keys, int64_t lo, int64_t hi, int64_t D, float scale,
    int half, float *scores) {
    int64_t t = lo;
#ifdef VIBE_KV_HALF
    if (D % 8 == 0) /* eight keys at once: eight lane-wise dot products, then one reduction */
        for (; t + 8 <= hi + 1; t += 8) {
            __m256 acc[8];
            for (int p = 0; p < 8; p++) acc[p] = _mm256_setzero_ps();
            for (int64_t j = 0; j < D; j += 8) {
                const __m256 qj = _mm256_loadu_ps(q + j);
                for (int p = 0; p < 8; p++)
                    acc[p] = _mm256_fmadd_ps(qj, load8(keys, (t + p) * D + j, half), acc[p]);
            }
            _mm256_storeu_ps(scores + t - lo, _mm256_mul_ps(vibe_hsum8x8(acc), _mm256_set1_ps(scale)));
        }
#endif
    for (; t <= hi; t++) {
        float s = 0.0f;
        for (int64_t j = 0; j < D; j++) s += q[j] * load1(keys, t * D + j, half);
        scores[t - lo] = s * scale;
    }
}

/* out [D] = sum over t in [lo, hi] of weights[t - lo] * values[t] (rows of D values). */
static inline __attribute__((always_inline)) void weighted_values(
    const float *weights, const void *values, int64_t lo, int64_t hi, int64_t D, int half,
    float *out) {
#ifdef VIBE_KV_HALF
    if (D % 64 == 0) { /* 64 columns at a time in registers */
        for (int64_t j = 0; j < D; j += 64) {
            __m256 acc[8];
            for (int c = 0; c < 8; c++) acc[c] = _mm256_setzero_ps();
            for (int64_t t = lo; t <= hi; t++) {
                const __m256 w = _mm256_set1_ps(weights[t - lo]);
                for (int c = 0; c < 8; c++)
                    acc[c] = _mm256_fmadd_ps(w, load8(values, t * D + j + 8 * c, half), acc[c]);
            }
            for (int c = 0; c < 8; c++) _mm256_storeu_ps(out + j + 8 * c, acc[c]);
        }
        return;
    }
#endif
    for (int64_t j = 0; j < D; j++) out[j] = 0.0f;
    for (int64_t t = lo; t <= hi; t++) {
        const float w = weights[t - lo];
        for (int64_t j = 0; j < D; j++) out[j] += w * load1(values, t * D + j, half);
    }
}

/* One query head over keys/values [lo, hi] of its cache head (rows of D values). */
static inline __attribute__((always_inline)) void attend_as(
    const float *q, const void *keys, const void *values, int64_t lo, int64_t hi, int64_t D,
    int half, float *scores, float *out) {
    const int64_t n = hi - lo + 1;
    qk_scores(q, keys, lo, hi, D, 1.0f / sqrtf((float)D), half, scores);
    float top = -INFINITY;
    for (int64_t i = 0; i < n; i++) top = scores[i] > top ? scores[i] : top;
    float total = 0.0f;
#pragma omp simd reduction(+ : total)
    for (int64_t i = 0; i < n; i++) total += scores[i] = vibe_expf(scores[i] - top);
    weighted_values(scores, values, lo, hi, D, half, out);
    const float inv = 1.0f / total;
    for (int64_t j = 0; j < D; j++) out[j] *= inv;
}

/* attend_as specialised for each cache type. */
static void attend(const float *q, const void *keys, const void *values, int64_t lo,
                   int64_t hi, int64_t D, int half, float *scores, float *out) {
    if (half)
        attend_as(q, keys, values, lo, hi, D, 1, scores, out);
    else
        attend_as(q, keys, values, lo, hi, D, 0, scores, out);
}

/* D floats into a cache row (fp32, or fp16 rounded to nearest when `half`). */
static void store_row(void *to, const float *from, int64_t D, int half) {
    if (!half) {
        memcpy(to, from, (size_t)D * sizeof(float));
        return;
    }
#ifdef VIBE_KV_HALF
    uint16_t *h = to;
    int64_t j = 0;
    for (; j + 8 <= D; j += 8)
        _mm_storeu_si128((__m128i *)(h + j),
                         _mm256_cvtps_ph(_mm256_loadu_ps(from + j), _MM_FROUND_TO_NEAREST_INT));
    for (; j < D; j++) h[j] = _cvtss_sh(from[j], _MM_FROUND_TO_NEAREST_INT);
#endif
}

int vibe_kv_half(void) {
#ifdef VIBE_KV_HALF
    return 1;
#else
    return 0;
#endif
}

/* Run every layer for M rows: x [M, dim] (in: embeddings, out: last layer's output), row m at
 * position pos[m] of the cache whose keys/values start at kbase[m]/vbase[m] ([n_layers,
 * n_kv_heads, max_len, head_dim]; fp32, or fp16 when kv_half and vibe_kv_half()), attending
 * to positions [lo[m], pos[m]], queries scaled by qscale[m]. When capture[l] >= 0, layer l's output goes to captured[capture[l]]
 * [M, dim] (EAGLE features). Returns 0, or -1 when out of memory or given fp16 caches without
 * F16C (x is then unchanged).
 *
 * Threads meet at six barriers a layer, after each product and between the cache writes and
 * attention. Everything of size M * dim (residual, norms, activation quantization) is computed
 * by every thread into its own buffers, which costs less than another barrier; SwiGLU is split
 * with the gate/up product (`swiglu`). Barriers also make each shared buffer's next write wait
 * for all reads of the last. */
int vibe_decode_layers(const vibe_model *md, int64_t M, float *x, const int64_t *pos,
                       const int64_t *lo, const float *qscale, void *const *kbase,
                       void *const *vbase, int kv_half, const int64_t *capture,
                       float *captured) {
    if (kv_half && !vibe_kv_half()) return -1;
    const int64_t es = kv_half ? 2 : 4; /* bytes of a cache value */
    const int64_t dim = md->dim, H = md->n_heads, Hkv = md->n_kv_heads, D = md->head_dim;
    const int64_t F = md->hidden, QKV = (H + 2 * Hkv) * D, group = H / Hkv;
    int64_t widest = dim > H * D ? dim : H * D; /* the widest product input */
    widest = widest > F ? widest : F;
    /* Shared: the products' outputs. */
    float *shared = malloc((size_t)(M * (QKV + H * D + 3 * F + dim)) * sizeof(float));
    if (!shared) return -1;
    float *qkv = shared, *att = qkv + M * QKV, *ffn = att + M * H * D, *glu = ffn + M * 2 * F;
    float *delta = glu + M * F;
    int failed = 0;
#pragma omp parallel
    {
        /* Private: the residual stream, a normed input, quantized activations, scores. */
        const size_t own = (size_t)(M * 2 * dim + md->max_len) * sizeof(float);
        float *xs = malloc(own);
        void *act = malloc((size_t)vibe_qact_bytes(M, widest));
        if (!xs || !act) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        float *h = xs + M * dim, *scores = h + M * dim;
        if (!failed) memcpy(xs, x, (size_t)(M * dim) * sizeof(float));
        for (int64_t l = 0; l < md->n_layers && !failed; l++) {
            const vibe_layer *lay = md->layers + l;
            const size_t plane = (size_t)md->max_len * (size_t)D, layer_at = (size_t)l * Hkv * plane;
            /* xs += the last layer's output (none before layer 0), h = rmsnorm(xs) */
            vibe_add_rmsnorm_f32(l > 0 ? delta : xs, l > 0 ? xs : NULL, xs, lay->attn_norm, h, M,
                                 dim, (float)md->eps);
            matmul(lay, WQKV, h, act, M, dim, qkv, QKV);
#pragma omp barrier
            int64_t t0, t1;
            vibe_split(M * Hkv, &t0, &t1); /* (row, kv head): its q heads, k head, and v */
            for (int64_t t = t0; t < t1; t++) {
                const int64_t m = t / Hkv, g = t % Hkv;
                float *row = qkv + m * QKV;
                const float *c = md->cos + pos[m] * D, *s = md->sin + pos[m] * D;
                for (int64_t head = g * group; head < (g + 1) * group; head++)
                    rotate(row + head * D, c, s, D, qscale[m]);
                rotate(row + (H + g) * D, c, s, D, 1.0f);
                const size_t at = layer_at + g * plane + (size_t)pos[m] * D;
                store_row((char *)kbase[m] + at * es, row + (H + g) * D, D, kv_half);
                store_row((char *)vbase[m] + at * es, row + (H + Hkv + g) * D, D, kv_half);
            }
#pragma omp barrier
            vibe_split(M * H, &t0, &t1); /* (row, query head) */
            for (int64_t t = t0; t < t1; t++) {
                const int64_t m = t / H, head = t % H;
                const size_t at = layer_at + (size_t)(head / group) * plane;
                attend(qkv + m * QKV + head * D, (char *)kbase[m] + at * es,
                       (char *)vbase[m] + at * es, lo[m], pos[m], D, kv_half, scores,
                       att + m * H * D + head * D);
            }
#pragma omp barrier
            matmul(lay, WO, att, act, M, H * D, delta, dim);
#pragma omp barrier
            vibe_add_rmsnorm_f32(delta, xs, xs, lay->ffn_norm, h, M, dim, (float)md->eps);
            swiglu(lay, h, act, M, dim, F, ffn, glu);
#pragma omp barrier
            matmul(lay, W2, glu, act, M, F, delta, dim);
#pragma omp barrier
            if (capture && capture[l] >= 0) {
                /* Written before this thread's next barrier; delta changes only after two. */
#pragma omp master
                {
                    float *to = captured + capture[l] * M * dim;
                    for (int64_t i = 0; i < M * dim; i++) to[i] = xs[i] + delta[i];
                }
            }
        }
        if (!failed) {
#pragma omp master
            for (int64_t i = 0; i < M * dim; i++) x[i] = xs[i] + delta[i];
        }
        free(xs);
        free(act);
    }
    free(shared);
    return failed ? -1 : 0;
}
