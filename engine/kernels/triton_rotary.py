"""Triton rotary embedding (HF rotate_half convention): one program per (token, q-or-k)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rotary_kernel(
    q_ptr,
    k_ptr,
    cos_ptr,
    sin_ptr,
    q_out_ptr,
    k_out_ptr,
    n_q_heads,
    n_k_heads,
    stride_q_tok,
    stride_q_head,
    stride_k_tok,
    stride_k_head,
    stride_cs_tok,
    HALF: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    tok = tl.program_id(0).to(tl.int64)
    is_k = tl.program_id(1)
    d = tl.arange(0, BLOCK_HALF)
    d_mask = d < HALF
    c1 = tl.load(cos_ptr + tok * stride_cs_tok + d, mask=d_mask, other=0.0).to(tl.float32)
    c2 = tl.load(cos_ptr + tok * stride_cs_tok + HALF + d, mask=d_mask, other=0.0).to(tl.float32)
    s1 = tl.load(sin_ptr + tok * stride_cs_tok + d, mask=d_mask, other=0.0).to(tl.float32)
    s2 = tl.load(sin_ptr + tok * stride_cs_tok + HALF + d, mask=d_mask, other=0.0).to(tl.float32)
    heads = tl.arange(0, BLOCK_H)
    if is_k == 0:
        src, dst, n_heads = q_ptr, q_out_ptr, n_q_heads
        src_off = tok * stride_q_tok + heads[:, None] * stride_q_head + d[None, :]
    else:
        src, dst, n_heads = k_ptr, k_out_ptr, n_k_heads
        src_off = tok * stride_k_tok + heads[:, None] * stride_k_head + d[None, :]
    mask = (heads[:, None] < n_heads) & d_mask[None, :]
    x1 = tl.load(src + src_off, mask=mask, other=0.0).to(tl.float32)  # [BLOCK_H, BLOCK_HALF]
    x2 = tl.load(src + src_off + HALF, mask=mask, other=0.0).to(tl.float32)
    # Outputs are contiguous [T, H, D].
    dst_off = (tok * n_heads + heads[:, None]) * (2 * HALF) + d[None, :]
    out_ty = dst.dtype.element_ty
    tl.store(dst + dst_off, (x1 * c1[None, :] - x2 * s1[None, :]).to(out_ty), mask=mask)
    tl.store(dst + dst_off + HALF, (x2 * c2[None, :] + x1 * s2[None, :]).to(out_ty), mask=mask)


def _last_dim_contiguous(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def apply_rotary(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    q, k = _last_dim_contiguous(q), _last_dim_contiguous(k)
    cos, sin = cos.contiguous(), sin.contiguous()
    n_tok, n_q, head_dim = q.shape
    n_k = k.shape[1]
    q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    k_out = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    half = head_dim // 2
    _rotary_kernel[(n_tok, 2)](
        q,
        k,
        cos,
        sin,
        q_out,
        k_out,
        n_q,
        n_k,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        cos.stride(0),
        HALF=half,
        BLOCK_H=triton.next_power_of_2(max(n_q, n_k)),
        BLOCK_HALF=triton.next_power_of_2(half),
    )
    return q_out, k_out
