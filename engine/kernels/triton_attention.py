"""Triton split-K decode attention ("flash-decoding") over a static KV cache, GQA-aware.

One program per (KV head, split) handles every query head of its group and all T new tokens at
once, so each key/value block is read from memory once. The grid depends only on shapes, and the
cache length may live in a device tensor, so a step that uses it can be captured in a CUDA graph.

Batched decode (continuous batching) is the same kernel with a third grid axis: program b reads
sequence b's cache slot and length from device tensors (slot-indexed pool of caches), so B
sequences of different lengths attend in one launch with no host sync.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl


@triton.jit
def _split_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    len_ptr,
    slot_ptr,
    out_ptr,
    part_o_ptr,
    part_lse_ptr,
    seq_len,
    max_len,
    qk_scale,
    window,
    n_queries,
    stride_qb,
    stride_qt,
    stride_qh,
    stride_ks,
    stride_kn,
    stride_kh,
    stride_vs,
    stride_vn,
    stride_vh,
    stride_ob,
    stride_ot,
    stride_oh,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    NUM_SPLITS: tl.constexpr,
    LEN_FROM_PTR: tl.constexpr,
    SLOTS: tl.constexpr,
    HAS_WINDOW: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    kv_head = tl.program_id(0)
    split = tl.program_id(1)
    seq = tl.program_id(2)  # batch row: 0 for one sequence
    if LEN_FROM_PTR:  # noqa: SIM108 (a constexpr branch: the load is traced only when used)
        length = tl.load(len_ptr + seq).to(tl.int32)
    else:
        length = seq_len
    if SLOTS:  # sequence `seq` reads cache slot slots[seq] of the pool (int64: pools are large)
        k_ptr += tl.load(slot_ptr + seq).to(tl.int64) * stride_ks
        v_ptr += tl.load(slot_ptr + seq).to(tl.int64) * stride_vs
    q_ptr += seq * stride_qb
    out_ptr += seq * stride_ob
    # A device-side length past the cache cannot be checked on the host: clamp, never read OOB.
    length = tl.minimum(length, max_len)
    # Row r of the tile is query token r // GROUP of head kv_head * GROUP + r % GROUP.
    rows = tl.arange(0, BLOCK_M)
    tok = rows // GROUP
    head = kv_head * GROUP + rows % GROUP
    row_mask = rows < n_queries * GROUP
    d = tl.arange(0, BLOCK_D)
    d_mask = d < HEAD_DIM
    q_mask = row_mask[:, None] & d_mask[None, :]
    q = tl.load(q_ptr + tok[:, None] * stride_qt + head[:, None] * stride_qh + d[None, :], q_mask)
    q_pos = length - n_queries + tok  # [BLOCK_M]

    kv_lo = 0
    if HAS_WINDOW:
        kv_lo = tl.maximum(length - n_queries + 1 - window, 0)
    # Split [kv_lo, length) evenly in whole blocks; the split size follows the runtime length.
    per_split = tl.cdiv(tl.cdiv(length - kv_lo, NUM_SPLITS), BLOCK_N) * BLOCK_N
    start = kv_lo + split * per_split
    end = tl.minimum(start + per_split, length)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for n0 in range(start, end, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        kv_mask = (n < end)[:, None] & d_mask[None, :]
        k = tl.load(k_ptr + n[:, None] * stride_kn + kv_head * stride_kh + d[None, :], kv_mask)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # log2 units
        allowed = (n[None, :] < end) & (n[None, :] <= q_pos[:, None])
        if HAS_WINDOW:
            allowed = allowed & (n[None, :] > q_pos[:, None] - window)
        s = tl.where(allowed, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # A row with nothing visible yet keeps m = -inf; shift by 0 so exp2 gives 0, not NaN.
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_ptr + n[:, None] * stride_vn + kv_head * stride_vh + d[None, :], kv_mask)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    o = acc / l_safe[:, None]
    if NUM_SPLITS == 1:
        out_offs = tok[:, None] * stride_ot + head[:, None] * stride_oh + d[None, :]
        tl.store(out_ptr + out_offs, o.to(out_ptr.dtype.element_ty), q_mask)
    else:
        part = ((seq * tl.num_programs(0) + kv_head) * NUM_SPLITS + split) * BLOCK_M + rows
        tl.store(part_o_ptr + part[:, None] * HEAD_DIM + d[None, :], o, q_mask)
        lse = tl.where(l_i == 0.0, float("-inf"), m_i + tl.log2(l_safe))
        tl.store(part_lse_ptr + part, lse, row_mask)


@triton.jit
def _combine_kernel(
    part_o_ptr,
    part_lse_ptr,
    out_ptr,
    stride_ob,
    stride_ot,
    stride_oh,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    NUM_SPLITS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    kv_head = tl.program_id(0)
    row = tl.program_id(1)
    seq = tl.program_id(2)
    s = tl.arange(0, BLOCK_S)
    s_mask = s < NUM_SPLITS
    d = tl.arange(0, BLOCK_D)
    d_mask = d < HEAD_DIM
    part = ((seq * tl.num_programs(0) + kv_head) * NUM_SPLITS + s) * BLOCK_M + row  # [BLOCK_S]
    lse = tl.load(part_lse_ptr + part, s_mask, other=float("-inf"))
    m = tl.max(lse, 0)
    w = tl.exp2(lse - tl.where(m == float("-inf"), 0.0, m))  # empty splits weigh 0
    o = tl.load(
        part_o_ptr + part[:, None] * HEAD_DIM + d[None, :], s_mask[:, None] & d_mask[None, :]
    )
    out = tl.sum(w[:, None] * o, 0) / tl.sum(w, 0)
    head = kv_head * GROUP + row % GROUP
    out_offs = seq * stride_ob + (row // GROUP) * stride_ot + head * stride_oh + d
    tl.store(out_ptr + out_offs, out.to(out_ptr.dtype.element_ty), d_mask)


@functools.cache
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def default_num_splits(
    device: torch.device, max_len: int, n_kv: int, block_n: int, batch: int = 1
) -> int:
    """About two programs per SM, never more splits than cache blocks (shape-only: graph-safe)."""
    if device.type != "cuda":
        return 1
    target = triton.cdiv(2 * _sm_count(device.index or 0), n_kv * batch)
    return max(1, min(target, triton.cdiv(max_len, 4 * block_n)))


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    length: int | torch.Tensor,
    scale: float,
    sliding_window: int | None = None,
    num_splits: int | None = None,
) -> torch.Tensor:
    """One sequence: q [T, Hq, D] over caches [max_len, Hkv, D]; returns [T, Hq, D]."""
    if isinstance(length, torch.Tensor):
        length = length.reshape(-1).to(q.device)
    out = _attention(
        q[None], k_cache[None], v_cache[None], length, None, scale, sliding_window, num_splits
    )
    return out[0]


def batch_decode_attention(
    q: torch.Tensor,
    k_pool: torch.Tensor,
    v_pool: torch.Tensor,
    slots: torch.Tensor,
    lengths: torch.Tensor,
    scale: float,
    sliding_window: int | None = None,
    num_splits: int | None = None,
) -> torch.Tensor:
    """B sequences, one token each: q [B, Hq, D], pools [S, max_len, Hkv, D], row b over slot
    slots[b] up to lengths[b] (both [B] device tensors); returns [B, Hq, D]."""
    return _attention(
        q[:, None], k_pool, v_pool, lengths, slots, scale, sliding_window, num_splits
    )[:, 0]


def _attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    length: int | torch.Tensor,
    slots: torch.Tensor | None,
    scale: float,
    sliding_window: int | None,
    num_splits: int | None,
) -> torch.Tensor:
    """q [B, T, Hq, D]; caches [S, max_len, Hkv, D] (S = 1 and `slots` None: one sequence);
    `length` an int (B = 1) or a [B] integer tensor."""
    batch, n_queries, n_heads, head_dim = q.shape
    _, max_len, n_kv, _ = k_cache.shape
    group = n_heads // n_kv
    for t, name in ((q, "q"), (k_cache, "k_cache"), (v_cache, "v_cache")):
        if t.stride(-1) != 1:
            raise ValueError(f"decode_attention: {name} must be contiguous in its last dim")
    if isinstance(length, torch.Tensor):
        len_from_ptr, seq_len, len_t = True, 0, length
    else:
        len_from_ptr, seq_len, len_t = False, int(length), q
    block_m = max(16, triton.next_power_of_2(n_queries * group))
    block_d = max(16, triton.next_power_of_2(head_dim))
    block_n = 64 if block_d <= 128 else 32
    if num_splits is None:
        num_splits = default_num_splits(q.device, max_len, n_kv, block_n, batch)
    out = torch.empty_like(q)
    if num_splits > 1:
        shape = (batch, n_kv, num_splits, block_m)
        part_o = torch.empty((*shape, head_dim), dtype=torch.float32, device=q.device)
        part_lse = torch.empty(shape, dtype=torch.float32, device=q.device)
    else:
        part_o = part_lse = out  # unused
    _split_kernel[(n_kv, num_splits, batch)](
        q,
        k_cache,
        v_cache,
        len_t,
        q if slots is None else slots,
        out,
        part_o,
        part_lse,
        seq_len,
        max_len,
        scale * 1.4426950408889634,  # log2(e): the kernel uses exp2
        sliding_window or 0,
        n_queries,
        *q.stride()[:3],
        *k_cache.stride()[:3],
        *v_cache.stride()[:3],
        *out.stride()[:3],
        GROUP=group,
        HEAD_DIM=head_dim,
        NUM_SPLITS=num_splits,
        LEN_FROM_PTR=len_from_ptr,
        SLOTS=slots is not None,
        HAS_WINDOW=sliding_window is not None,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_D=block_d,
    )
    if num_splits > 1:
        _combine_kernel[(n_kv, n_queries * group, batch)](
            part_o,
            part_lse,
            out,
            *out.stride()[:3],
            GROUP=group,
            HEAD_DIM=head_dim,
            NUM_SPLITS=num_splits,
            BLOCK_M=block_m,
            BLOCK_S=triton.next_power_of_2(num_splits),
            BLOCK_D=block_d,
        )
    return out
