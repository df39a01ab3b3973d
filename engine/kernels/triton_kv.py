"""Triton scatter of new keys/values into a static KV cache (one program per (token, k-or-v))."""

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
    row_size,
    stride_src,
    stride_cache,
    BLOCK: tl.constexpr,
):
    tok = tl.program_id(0).to(tl.int64)
    is_v = tl.program_id(1)
    pos = tl.load(pos_ptr + tok).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    # Out-of-range positions are dropped rather than written out of bounds: checking them on
    # the host would need a device sync on every decode step.
    limit = tl.where((pos >= 0) & (pos < max_len), row_size, 0)
    mask = offs < limit
    if is_v == 0:
        row = tl.load(k_ptr + tok * stride_src + offs, mask=mask)
        tl.store(k_cache_ptr + pos * stride_cache + offs, row, mask=mask)
    else:
        row = tl.load(v_ptr + tok * stride_src + offs, mask=mask)
        tl.store(v_cache_ptr + pos * stride_cache + offs, row, mask=mask)


def kv_cache_write(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    positions: torch.Tensor,
) -> None:
    max_len, n_kv, head_dim = k_cache.shape
    row_size = n_kv * head_dim
    for cache in (k_cache, v_cache):
        # One row per position must be dense; a per-layer view of [L, max_len, Hkv, D] is.
        if cache.stride(2) != 1 or cache.stride(1) != head_dim:
            raise ValueError("kv_cache_write: cache rows [Hkv, D] must be contiguous")
    if k_cache.stride(0) != v_cache.stride(0):
        raise ValueError("kv_cache_write: k_cache and v_cache must have the same strides")
    k = k.to(k_cache.dtype).reshape(-1, row_size).contiguous()
    v = v.to(v_cache.dtype).reshape(-1, row_size).contiguous()
    _kv_write_kernel[(k.shape[0], 2)](
        k,
        v,
        k_cache,
        v_cache,
        positions.contiguous(),
        max_len,
        row_size,
        row_size,
        k_cache.stride(0),
        BLOCK=triton.next_power_of_2(row_size),
    )
