"""Pure-torch reference implementations of the engine's fused ops.

They define the semantics every Triton kernel is tested against, and they are what runs on CPU.
Layouts are documented in `engine.kernels` (the dispatcher).
"""

from __future__ import annotations

import torch


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim, in fp32, cast back before the weight (HF Mistral order)."""
    xf = x.float()
    normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return normed.to(x.dtype) * weight.to(x.dtype)


def add_rmsnorm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`h = x + residual` (in x's dtype); returns `(rmsnorm(h), h)`."""
    hidden = x if residual is None else x + residual
    return rmsnorm(hidden, weight, eps), hidden


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """HF rotate_half RoPE: q [T, Hq, D], k [T, Hkv, D], cos/sin [T, D]; computed in fp32."""
    c = cos.float()[:, None, :]  # [T, 1, D]
    s = sin.float()[:, None, :]

    def rotate(x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * c + _rotate_half(xf) * s).to(x.dtype)

    return rotate(q), rotate(k)


def kv_cache_write(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    positions: torch.Tensor,
) -> None:
    """In place: `k_cache[positions[t]] = k[t]` (same for v); caches [max_len, Hkv, D]."""
    k_cache.index_copy_(0, positions, k.to(k_cache.dtype))
    v_cache.index_copy_(0, positions, v.to(v_cache.dtype))


def attention_mask(
    num_queries: int, length: int, sliding_window: int | None, device: torch.device
) -> torch.Tensor:
    """[T, length] bool: query t sits at position `length - T + t` and sees keys j with
    `j <= pos` and, with a window W, `j > pos - W` (W keys including itself, as in HF Mistral)."""
    q_pos = torch.arange(length - num_queries, length, device=device)[:, None]
    k_pos = torch.arange(length, device=device)[None, :]
    allowed = k_pos <= q_pos
    if sliding_window is not None:
        allowed &= k_pos > q_pos - sliding_window
    return allowed


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    length: int | torch.Tensor,
    scale: float,
    sliding_window: int | None = None,
) -> torch.Tensor:
    """Attention of the last T tokens (q [T, Hq, D]) over cache entries [0, length), in fp32.

    The T new tokens' keys/values must already be in the cache at positions length-T .. length-1;
    they attend causally among themselves. Head h reads KV head h // (Hq // Hkv) (GQA).
    """
    num_queries, num_heads, _ = q.shape
    num_kv = k_cache.shape[1]
    n = int(length)
    k = k_cache[:n].float().repeat_interleave(num_heads // num_kv, dim=1)  # [n, Hq, D]
    v = v_cache[:n].float().repeat_interleave(num_heads // num_kv, dim=1)
    scores = torch.einsum("thd,nhd->htn", q.float(), k) * scale
    allowed = attention_mask(num_queries, n, sliding_window, q.device)
    scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.einsum("htn,nhd->thd", probs, v).to(q.dtype)


def batch_kv_write(
    k_pool: torch.Tensor,
    v_pool: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    slots: torch.Tensor,
    positions: torch.Tensor,
) -> None:
    """In place: `k_pool[slots[b], positions[b]] = k[b]` (same for v); pools [S, max_len, Hkv, D],
    k/v [B, Hkv, D]. One scatter per tensor, indices read on the device (no host sync)."""
    k_pool[slots, positions] = k.to(k_pool.dtype)
    v_pool[slots, positions] = v.to(v_pool.dtype)


def batch_decode_attention(
    q: torch.Tensor,
    k_pool: torch.Tensor,
    v_pool: torch.Tensor,
    slots: torch.Tensor,
    lengths: torch.Tensor,
    scale: float,
    sliding_window: int | None = None,
) -> torch.Tensor:
    """Row b of q [B, Hq, D] is `decode_attention` of one token over pool slot slots[b] up to
    lengths[b] (pools [S, max_len, Hkv, D]); returns [B, Hq, D]."""
    rows = zip(slots.tolist(), lengths.tolist(), strict=True)
    return torch.cat(
        [
            decode_attention(q[b : b + 1], k_pool[s], v_pool[s], n, scale, sliding_window)
            for b, (s, n) in enumerate(rows)
        ]
    )


def dequantize_weight(
    data: torch.Tensor,
    scale: torch.Tensor,
    mins: torch.Tensor | None,
    group: int,
    cols: int,
    fmt: str,
) -> torch.Tensor:
    """fp32 [N, cols] of a weight-only quantized matrix (`engine.kernels.triton_quant` layouts):
    int8 / fp8 `data` [N, cols] times `scale[n, k // group]`; int4 `data` uint8 [N, cols // 2]
    (value 2j in byte j's low nibble, 2j + 1 in its high one) times the scale plus `mins`."""
    q = data
    if fmt == "int4":
        q = torch.stack((data & 15, data >> 4), -1).reshape(data.shape[0], -1)
    w = q.float() * scale.float().repeat_interleave(group, 1)[:, :cols]
    if mins is not None:
        w += mins.float().repeat_interleave(group, 1)[:, :cols]
    return w


def quant_linear(
    x: torch.Tensor,
    data: torch.Tensor,
    scale: torch.Tensor,
    mins: torch.Tensor | None,
    group: int,
    cols: int,
    fmt: str,
    chunk: int = 4096,
) -> torch.Tensor:
    """x [..., cols] @ W.T in x's dtype, dequantising `chunk` rows of W at a time."""
    parts = [
        torch.nn.functional.linear(
            x, dequantize_weight(data[r : r + chunk], scale[r : r + chunk],
                                 None if mins is None else mins[r : r + chunk], group, cols,
                                 fmt).to(x.dtype),
        )
        for r in range(0, data.shape[0], chunk)
    ]  # fmt: skip
    if not parts:
        return x.new_empty((*x.shape[:-1], 0))
    return parts[0] if len(parts) == 1 else torch.cat(parts, -1)
