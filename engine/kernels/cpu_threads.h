/* Splitting rows between the threads of an OpenMP region (the C kernels of this folder). */
#ifndef VIBE_CPU_THREADS_H
#define VIBE_CPU_THREADS_H
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* This thread's share [*lo, *hi) of n items inside an OpenMP parallel region. */
static inline void vibe_split(int64_t n, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    const int64_t t = 0, T = 1;
#endif
    *lo = n * t / T;
    *hi = n * (t + 1) / T;
}

/* The same in whole groups of `align` items (n a multiple of align). */
static inline void vibe_split_aligned(int64_t n, int64_t align, int64_t *lo, int64_t *hi) {
    vibe_split(n / align, lo, hi);
    *lo *= align;
    *hi *= align;
}
#endif
