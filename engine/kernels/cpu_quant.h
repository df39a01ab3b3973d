/* The quantized row-range API shared by cpu_quant.c (vibe_qlinear) and cpu_decode.c (the
 * fused CPU decode step). A product is: quantize the activations once (vibe_qact into a
 * buffer of vibe_qact_bytes), then each thread computes its own range of output rows
 * (vibe_qdot_rows); nothing here starts threads. */
#ifndef VIBE_CPU_QUANT_H
#define VIBE_CPU_QUANT_H
#include <stdint.h>

#include "cpu_threads.h"

/* A GGML type | VIBE_PACKED: the same blocks repacked at load into tiles of rows (vibe_pack,
 * cpu_quant_tile.c); row ranges of such a matrix start and end on vibe_qalign(type) rows. */
#define VIBE_PACKED 256

/* 1 when weights of GGML type `qtype` with K columns run here (else the caller dequantizes). */
int vibe_qtype_ok(int qtype, int64_t K);
/* Rows a thread's range of output rows is a multiple of: 1, or a packed type's tile. */
int vibe_qalign(int qtype);
/* Bytes of the quantized activations of M rows of K values. */
int64_t vibe_qact_bytes(int64_t M, int64_t K);
/* Quantize x [M, K] (row stride ldx) into `act`. */
void vibe_qact(const float *x, int64_t ldx, int64_t M, int64_t K, void *act);
/* out[m * ldo + n] = dot(x[m], dequant(w[n])) for n in [n0, n1), every m < M. */
void vibe_qdot_rows(int qtype, const uint8_t *w, int64_t ldw, const void *act, int64_t M,
                    int64_t K, float *out, int64_t ldo, int64_t n0, int64_t n1);
#endif
