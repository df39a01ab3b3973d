/* The fp32 row-range product of cpu_linear.c, for the fused decode step (cpu_decode.c). */
#ifndef VIBE_CPU_LINEAR_H
#define VIBE_CPU_LINEAR_H
#include <stdint.h>

/* out[m * ldo + n] = dot(x[m], w[n]) for n in [n0, n1), 1 <= M <= 16 (one thread). */
void vibe_f32_rows(const float *x, int64_t ldx, const float *w, int64_t ldw, float *out,
                   int64_t ldo, int64_t M, int64_t K, int64_t n0, int64_t n1);
/* sum = resid + delta (resid NULL: sum = delta), out = w * rmsnorm(sum), for M rows of K. */
void vibe_add_rmsnorm_f32(const float *delta, const float *resid, float *sum, const float *w,
                          float *out, int64_t M, int64_t K, float eps);
#endif
