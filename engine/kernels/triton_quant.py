"""Weight-only quantized matmul in Triton for decode-shaped inputs (1 to 16 rows), gpt-fast style:
the weights stay quantized in memory and are dequantised tile by tile inside the kernel.

`quant_linear(x, data, scale, mins, group, cols, fmt)` computes `x @ W.T` for W [N, cols] held as
(layouts and math as in `engine.kernels.reference.dequantize_weight`):

    fmt "int8": data int8 [N, cols];            W = data * scale[n, k // group]
    fmt "fp8":  data float8_e4m3fn [N, cols];   W = data * scale[n, k // group]
    fmt "int4": data uint8 [N, cols // 2], byte j of a row holding value 2j in its low nibble
                and value 2j + 1 in its high nibble (0..15);  W = q * scale[n, g] + mins[n, g]

`scale` (and `mins`) are [N, ceil(cols / group)]: group == cols is one scale per output row
(int8, row-wise FP8), 128 the block-scaled FP8 checkpoints, 32/64/128 int4. Accumulation is in
fp32; the dequantised tile is cast to x's dtype before the dot (fp32 activations use IEEE fp32
dots, not TF32). FP8 bytes are decoded with integer ops (no fp8 instructions), so the kernel runs
on any GPU Triton supports and under TRITON_INTERPRET=1. One launch, no host sync: capturable in
a CUDA graph. Block sizes are fixed (not autotuned: autotuning inside a graph capture breaks).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

FORMATS = {"int8": 0, "fp8": 1, "int4": 2}
BLOCK_M = 16  # tl.dot needs >= 16 rows; decode steps are padded with masked rows


@triton.jit
def _fp8_e4m3_to_f32(b):
    # e4m3fn bits -> the fp16 with the same sign/exponent/mantissa bits shifted into place,
    # which is the value / 256 (normals and subnormals alike); NaN (0x7f) is never stored.
    bits = b.to(tl.int32)
    half = ((bits & 0x80) << 8) | ((bits & 0x7F) << 7)
    return half.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32) * 256.0


@triton.jit
def _quant_linear_kernel(
    x_ptr, w_ptr, s_ptr, m_ptr, out_ptr,
    M, N, K,
    stride_xm, stride_wn, stride_sn, stride_om,
    GROUP: tl.constexpr, FMT: tl.constexpr, HAS_MINS: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = rm < M
    n_ok = rn < N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    x_rows = x_ptr + rm[:, None] * stride_xm
    w_rows = w_ptr + rn[:, None] * stride_wn
    s_rows = s_ptr + rn[:, None] * stride_sn
    m_rows = m_ptr + rn[:, None] * stride_sn
    for k0 in range(0, K, BLOCK_K):
        if FMT == 2:  # int4: BLOCK_K values are BLOCK_K // 2 bytes; even and odd values apart
            rb = k0 // 2 + tl.arange(0, BLOCK_K // 2)
            b_ok = n_ok[:, None] & (rb[None, :] < K // 2)
            packed = tl.load(w_rows + rb[None, :], mask=b_ok, other=0).to(tl.int32)
            g = (rb * 2) // GROUP
            s = tl.load(s_rows + g[None, :], mask=b_ok, other=0.0).to(tl.float32)
            lo = (packed & 15).to(tl.float32) * s
            hi = (packed >> 4).to(tl.float32) * s
            if HAS_MINS:
                z = tl.load(m_rows + g[None, :], mask=b_ok, other=0.0).to(tl.float32)
                lo += z
                hi += z
            xm = m_ok[:, None] & (rb[None, :] < K // 2)
            x_even = tl.load(x_rows + 2 * rb[None, :], mask=xm, other=0.0)
            x_odd = tl.load(x_rows + 2 * rb[None, :] + 1, mask=xm, other=0.0)
            lo = lo.to(x_even.dtype)
            hi = hi.to(x_even.dtype)
            acc += tl.dot(x_even, tl.trans(lo), input_precision=PRECISION)
            acc += tl.dot(x_odd, tl.trans(hi), input_precision=PRECISION)
        else:
            rk = k0 + tl.arange(0, BLOCK_K)
            w_ok = n_ok[:, None] & (rk[None, :] < K)
            q = tl.load(w_rows + rk[None, :], mask=w_ok, other=0)
            if FMT == 1:  # noqa: SIM108 (a constexpr branch)
                w = _fp8_e4m3_to_f32(q)
            else:
                w = q.to(tl.float32)
            s = tl.load(s_rows + (rk // GROUP)[None, :], mask=w_ok, other=0.0).to(tl.float32)
            xv = tl.load(x_rows + rk[None, :], mask=m_ok[:, None] & (rk[None, :] < K), other=0.0)
            w = (w * s).to(xv.dtype)
            acc += tl.dot(xv, tl.trans(w), input_precision=PRECISION)
    out = out_ptr + rm[:, None] * stride_om + rn[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


def quant_linear(
    x: torch.Tensor,
    data: torch.Tensor,
    scale: torch.Tensor,
    mins: torch.Tensor | None,
    group: int,
    cols: int,
    fmt: str,
) -> torch.Tensor:
    """x [..., cols] @ W.T -> [..., N] in x's dtype (layouts in the module docstring)."""
    K, N = cols, data.shape[0]
    lead = x.shape[:-1]
    x2 = x.reshape(-1, K)
    if x2.stride(1) != 1:
        x2 = x2.contiguous()
    M = x2.shape[0]
    out = torch.empty((M, N), dtype=x.dtype, device=x.device)
    if M == 0 or N == 0:
        return out.reshape(*lead, N)
    if data.stride(1) != 1 or scale.stride(1) != 1:
        raise ValueError("quant_linear: weight and scale rows must be contiguous")
    if mins is not None and mins.stride() != scale.stride():
        raise ValueError("quant_linear: mins must have the scale's layout")
    w = data.view(torch.uint8) if fmt == "fp8" else data
    block_n = 32 if N <= 8192 else 64
    block_k = 128 if fmt != "int4" else 64
    precision = "ieee" if x.dtype == torch.float32 else "tf32"
    grid = (triton.cdiv(N, block_n), triton.cdiv(M, BLOCK_M))
    _quant_linear_kernel[grid](
        x2, w, scale, scale if mins is None else mins, out,
        M, N, K,
        x2.stride(0), w.stride(0), scale.stride(0), out.stride(0),
        GROUP=group, FMT=FORMATS[fmt], HAS_MINS=mins is not None, PRECISION=precision,
        BLOCK_M=BLOCK_M, BLOCK_N=block_n, BLOCK_K=block_k,
    )  # fmt: skip
    return out.reshape(*lead, N)
