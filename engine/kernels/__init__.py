"""Fused ops for the engine: each call runs a Triton kernel on CUDA tensors when Triton is
importable and the pure-torch reference (`engine.kernels.reference`) otherwise.

`VIBE_KERNELS=auto|torch|triton` (read on every call) forces a backend; with `triton` and
`TRITON_INTERPRET=1`, Triton kernels also run on CPU tensors (that is how the tests run them).
Triton is imported only when a Triton kernel is actually called.

Layouts (batch 1; T = tokens in this step, D = head_dim, Hq/Hkv = query/KV heads):
    x, residual [..., hidden]           weight [hidden]
    q [T, Hq, D]   k, v [T, Hkv, D]     cos, sin [T, D] (HF "rotate_half": cos = cat(f, f))
    k_cache, v_cache [max_len, Hkv, D]  (one layer, any strides with a dense last dim: the
                                         engine passes `KVCache.k[layer].transpose(0, 1)` of
                                         its [L, Hkv, max_len, D] buffers, no copy)
    positions [T] int64                 length: int or an integer tensor of one element
Batched decode (B sequences, one token each, over a slot-indexed pool of caches):
    q, k, v [B, H, D]   k_pool, v_pool [S, max_len, Hkv, D] (`KVPool.layer(i)`, no copy)
    slots, positions/lengths [B] integer tensors on the pool's device
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType

import torch

from engine.kernels import reference

__all__ = [
    "add_rmsnorm",
    "apply_rotary",
    "backend_for",
    "batch_decode_attention",
    "batch_kv_write",
    "decode_attention",
    "kv_cache_write",
    "rmsnorm",
    "triton_available",
]

ENV_VAR = "VIBE_KERNELS"
_MODES = ("auto", "torch", "triton")


@functools.cache
def triton_available() -> bool:
    """True when `import triton` works (checked once per process)."""
    if importlib.util.find_spec("triton") is None:
        return False
    try:
        import triton  # noqa: F401
    except Exception:  # a broken install (missing libcuda, ABI mismatch) counts as absent
        return False
    return True


def backend_for(tensor: torch.Tensor) -> str:
    """'triton' or 'torch': the backend an op on `tensor` uses under the current VIBE_KERNELS."""
    mode = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(_MODES)}, got {mode!r}")
    if mode == "torch":
        return "torch"
    if mode == "auto":
        return "triton" if tensor.is_cuda and triton_available() else "torch"
    if not triton_available():
        raise RuntimeError(f"{ENV_VAR}=triton but triton cannot be imported")
    if not tensor.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(f"{ENV_VAR}=triton needs CUDA tensors (or TRITON_INTERPRET=1 on CPU)")
    return "triton"


def _impl(tensor: torch.Tensor, triton_module: str) -> ModuleType:
    if backend_for(tensor) == "torch":
        return reference
    return importlib.import_module(f"engine.kernels.{triton_module}")


def _check_last_dim(name: str, t: torch.Tensor, size: int) -> None:
    if t.shape[-1] != size:
        raise ValueError(f"{name}: last dim is {t.shape[-1]}, expected {size}")


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim; output in x's dtype."""
    _check_last_dim("rmsnorm", x, weight.shape[0])
    return _impl(x, "triton_norm").rmsnorm(x, weight, eps)


def add_rmsnorm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`h = x + residual` (or `h = x` when residual is None); returns `(rmsnorm(h), h)`.

    `h` is the residual stream for the next layer; x and residual are not modified."""
    _check_last_dim("add_rmsnorm", x, weight.shape[0])
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"add_rmsnorm: residual {tuple(residual.shape)} != x {tuple(x.shape)}")
    return _impl(x, "triton_norm").add_rmsnorm(x, residual, weight, eps)


def apply_rotary(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding, HF convention `x * cos + rotate_half(x) * sin`; returns new (q, k).

    q [T, Hq, D], k [T, Hkv, D], cos/sin [T, D] for the T tokens' positions; math in fp32."""
    if q.dim() != 3 or k.dim() != 3 or cos.dim() != 2 or cos.shape != sin.shape:
        raise ValueError("apply_rotary: expected q [T, Hq, D], k [T, Hkv, D], cos/sin [T, D]")
    n_tok, _, head_dim = q.shape
    if k.shape[0] != n_tok or k.shape[2] != head_dim or tuple(cos.shape) != (n_tok, head_dim):
        raise ValueError(
            f"apply_rotary: shapes q {tuple(q.shape)}, k {tuple(k.shape)}, cos {tuple(cos.shape)}"
            " disagree"
        )
    if head_dim % 2:
        raise ValueError(f"apply_rotary: head_dim must be even, got {head_dim}")
    return _impl(q, "triton_rotary").apply_rotary(q, k, cos, sin)


def kv_cache_write(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    positions: torch.Tensor,
) -> None:
    """In place: `k_cache[positions[t]] = k[t]`, `v_cache[positions[t]] = v[t]`.

    Caches [max_len, Hkv, D] (strided views allowed), k/v [T, Hkv, D], positions [T] integer
    tensor on the cache's device.
    The Triton path drops positions outside [0, max_len) (no host sync to check them)."""
    if k_cache.dim() != 3 or k_cache.shape != v_cache.shape:
        raise ValueError("kv_cache_write: caches must both be [max_len, Hkv, D]")
    expected = (positions.shape[0], *k_cache.shape[1:])
    if positions.dim() != 1 or tuple(k.shape) != expected or tuple(v.shape) != expected:
        raise ValueError(
            f"kv_cache_write: k {tuple(k.shape)}, v {tuple(v.shape)}, positions "
            f"{tuple(positions.shape)} do not fit cache {tuple(k_cache.shape)}"
        )
    _impl(k_cache, "triton_kv").kv_cache_write(k_cache, v_cache, k, v, positions)


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    length: int | torch.Tensor,
    scale: float,
    sliding_window: int | None = None,
) -> torch.Tensor:
    """Attention of T new tokens (q [T, Hq, D]) over cache entries [0, length); returns [T, Hq, D].

    The new tokens' K/V must already be written at positions length-T .. length-1; token t (at
    position length-T+t) sees keys j <= its position, and with a window W only j > position - W.
    `length` may be a device tensor (no host sync; CUDA-graph friendly). Hq % Hkv == 0 (GQA).
    Meant for decode and speculative verify (T up to ~16); prefill belongs to SDPA."""
    if q.dim() != 3 or k_cache.dim() != 3 or k_cache.shape != v_cache.shape:
        raise ValueError("decode_attention: expected q [T, Hq, D], caches [max_len, Hkv, D]")
    if q.shape[2] != k_cache.shape[2] or q.shape[1] % k_cache.shape[1]:
        raise ValueError(
            f"decode_attention: q {tuple(q.shape)} does not fit cache {tuple(k_cache.shape)}"
        )
    if isinstance(length, int) and not q.shape[0] <= length <= k_cache.shape[0]:
        raise ValueError(
            f"decode_attention: length {length} outside [{q.shape[0]}, {k_cache.shape[0]}]"
        )
    if sliding_window is not None and sliding_window < 1:
        raise ValueError(f"decode_attention: sliding_window must be >= 1, got {sliding_window}")
    return _impl(q, "triton_attention").decode_attention(
        q, k_cache, v_cache, length, scale, sliding_window
    )


def _check_batch(name: str, q: torch.Tensor, k_pool: torch.Tensor, v_pool: torch.Tensor,
                 slots: torch.Tensor, rows: torch.Tensor) -> None:  # fmt: skip
    if q.dim() != 3 or k_pool.dim() != 4 or k_pool.shape != v_pool.shape:
        raise ValueError(f"{name}: expected [B, H, D] rows and pools [S, max_len, Hkv, D]")
    if slots.shape != (q.shape[0],) or rows.shape != (q.shape[0],):
        raise ValueError(f"{name}: slots and positions/lengths must both be [{q.shape[0]}]")
    if q.shape[2] != k_pool.shape[3]:
        raise ValueError(f"{name}: rows {tuple(q.shape)} do not fit pool {tuple(k_pool.shape)}")


def batch_kv_write(
    k_pool: torch.Tensor,
    v_pool: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    slots: torch.Tensor,
    positions: torch.Tensor,
) -> None:
    """In place: `k_pool[slots[b], positions[b]] = k[b]` (same for v). One scatter per tensor
    with device-side indices on every backend (no Triton kernel: it would be the same scatter).
    The caller keeps slots and positions in range (out-of-range ones fail, CUDA asynchronously)."""
    _check_batch("batch_kv_write", k, k_pool, v_pool, slots, positions)
    if k.shape != v.shape or k.shape[1] != k_pool.shape[2]:
        raise ValueError(f"batch_kv_write: k {tuple(k.shape)}, v {tuple(v.shape)} do not fit "
                         f"pool {tuple(k_pool.shape)}")  # fmt: skip
    reference.batch_kv_write(k_pool, v_pool, k, v, slots, positions)


def batch_decode_attention(
    q: torch.Tensor,
    k_pool: torch.Tensor,
    v_pool: torch.Tensor,
    slots: torch.Tensor,
    lengths: torch.Tensor,
    scale: float,
    sliding_window: int | None = None,
) -> torch.Tensor:
    """`decode_attention` of B sequences' one new token each in one call: row b of q [B, Hq, D]
    attends over pool slot slots[b], entries [0, lengths[b]) (its own K/V already written at
    lengths[b] - 1), with the same window rule. Slots and lengths stay on the device (no host
    sync; lengths past max_len are clamped by the kernel). Returns [B, Hq, D]."""
    _check_batch("batch_decode_attention", q, k_pool, v_pool, slots, lengths)
    if q.shape[1] % k_pool.shape[2]:
        raise ValueError(f"batch_decode_attention: {q.shape[1]} query heads do not group over "
                         f"{k_pool.shape[2]} KV heads")  # fmt: skip
    if sliding_window is not None and sliding_window < 1:
        raise ValueError(f"batch_decode_attention: sliding_window must be >= 1, "
                         f"got {sliding_window}")  # fmt: skip
    return _impl(q, "triton_attention").batch_decode_attention(
        q, k_pool, v_pool, slots, lengths, scale, sliding_window
    )
