"""Triton scatter of new keys/values into a static KV cache (one program per (token, k-or-v)).

The cache may be any strided [max_len, Hkv, D] view with a dense last dim: the engine passes its
[Hkv, max_len, D] layer slices transposed, so no copy or layout change is needed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _kv_write_kernel(
    k_ptr,
    v_ptr,
    k_cache_ptr,
    v_cache_ptr,
    pos_ptr,
    max_len,
    n_kv,
    stride_src_tok,
    stride_cache_pos,
    stride_cache_head,
    HEAD_DIM: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    tok = tl.program_id(0).to(tl.int64)
    is_v = tl.program_id(1)
    pos = tl.load(pos_ptr + tok).to(tl.int64)
    heads = tl.arange(0, BLOCK_H)
    d = tl.arange(0, BLOCK_D)
    # Out-of-range positions are dropped rather than written out of bounds: checking them on
    # the host would need a device sync on every decode step.
    n_rows = tl.where((pos >= 0) & (pos < max_len), n_kv, 0)
    mask = (heads[:, None] < n_rows) & (d[None, :] < HEAD_DIM)
    src_off = tok * stride_src_tok + heads[:, None] * HEAD_DIM + d[None, :]
    dst_off = pos * stride_cache_pos + heads[:, None].to(tl.int64) * stride_cache_head + d[None, :]
    if is_v == 0:
        tl.store(k_cache_ptr + dst_off, tl.load(k_ptr + src_off, mask=mask), mask=mask)
    else:
        tl.store(v_cache_ptr + dst_off, tl.load(v_ptr + src_off, mask=mask), mask=mask)


def kv_cache_write(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    positions: torch.Tensor,
) -> None:
    max_len, n_kv, head_dim = k_cache.shape
    for cache in (k_cache, v_cache):
        if cache.stride(2) != 1:
            raise ValueError("kv_cache_write: cache must be contiguous in its last dim")
    if k_cache.stride() != v_cache.stride():
        raise ValueError("kv_cache_write: k_cache and v_cache must have the same strides")
    k = k.to(k_cache.dtype).contiguous()  # [T, Hkv, D] dense
    v = v.to(v_cache.dtype).contiguous()
    _kv_write_kernel[(k.shape[0], 2)](
        k,
        v,
        k_cache,
        v_cache,
        positions.contiguous(),
        max_len,
        n_kv,
        n_kv * head_dim,
        k_cache.stride(0),
        k_cache.stride(1),
        HEAD_DIM=head_dim,
        BLOCK_H=triton.next_power_of_2(n_kv),
        BLOCK_D=triton.next_power_of_2(head_dim),
    )
