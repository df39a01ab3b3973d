/* Small AVX helpers shared by the C kernels of this folder. */
#ifndef VIBE_CPU_SIMD_H
#define VIBE_CPU_SIMD_H
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* The sum of the eight floats of v. */
static inline float vibe_hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
#endif
#endif
