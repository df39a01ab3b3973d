"""The decode / speculative-verify ops through the fused kernels of `engine.kernels`.

`Transformer.forward` runs steps of at most MAX_TOKENS tokens with these ops when the kernel
dispatcher picks Triton (CUDA, or `VIBE_KERNELS=triton` under `TRITON_INTERPRET=1`); prefill
keeps SDPA (`engine.layer.CacheOps`). The ops make no host syncs when `length` is a device
tensor, so a step can be captured in a CUDA graph (`engine.graphs.StepRunner`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine import kernels
from engine.kv_cache import KVCache, KVPool
from engine.layer import StepOps

MAX_TOKENS = 16  # decode (1) and speculative verify (K + 1); longer steps are prefill


def wanted(probe: torch.Tensor, n_tokens: int) -> bool:
    """True when a step of `n_tokens` on `probe`'s device should take the fused kernels."""
    return n_tokens <= MAX_TOKENS and kernels.backend_for(probe) == "triton"


class FusedOps(StepOps):
    """Fused add+RMSNorm and rotary for the step's tokens at `positions` [T] (device tensor);
    subclasses pick the attention."""

    def __init__(
        self,
        heads: tuple[int, int, int],
        eps: float,
        cos_table: torch.Tensor,
        sin_table: torch.Tensor,
        positions: torch.Tensor,
        window: int | None = None,
        q_scale: torch.Tensor | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if q_scale is not None:
            q_scale = q_scale.to(cos_table.dtype)[:, None, None]
        cos, sin = cos_table[positions], sin_table[positions]  # [T, D]
        super().__init__(heads, eps, cos, sin, q_scale, reduce)
        self.positions, self.window = positions, window

    def add_norm(
        self, delta: torch.Tensor, resid: torch.Tensor | None, weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return kernels.add_rmsnorm(delta, resid, weight, self.eps)

    def rotate(self, qkv: torch.Tensor, H: int, Hkv: int) -> tuple[torch.Tensor, torch.Tensor]:
        q, k = kernels.apply_rotary(qkv[:, :H], qkv[:, H : H + Hkv], self.cos, self.sin)
        return (q if self.q_scale is None else q * self.q_scale), k


class KernelOps(FusedOps):
    """The fused kernels for T tokens at consecutive `positions` [T] of one cache, ending at
    `length - 1` (an int, or a device tensor: no host sync)."""

    def __init__(
        self,
        heads: tuple[int, int, int],
        eps: float,
        cos_table: torch.Tensor,
        sin_table: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
        length: int | torch.Tensor,
        window: int | None = None,
        q_scale: torch.Tensor | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(heads, eps, cos_table, sin_table, positions, window, q_scale, reduce)
        self.cache, self.length = cache, length

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        D = self.heads[2]
        k_cache = self.cache.k[layer].transpose(0, 1)
        v_cache = self.cache.v[layer].transpose(0, 1)
        kernels.kv_cache_write(k_cache, v_cache, k, v, self.positions)
        return kernels.decode_attention(q, k_cache, v_cache, self.length, D**-0.5, self.window)


class BatchKernelOps(FusedOps):
    """The fused kernels for B sequences' one new token each (continuous batching): row b sits at
    positions[b] of pool slot slots[b] (both [B] device tensors: no host sync). Attention writes
    every row's K/V with one scatter and attends each row over its own slot in one batched
    kernel launch."""

    def __init__(
        self,
        heads: tuple[int, int, int],
        eps: float,
        cos_table: torch.Tensor,
        sin_table: torch.Tensor,
        positions: torch.Tensor,
        pool: KVPool,
        slots: torch.Tensor,
        window: int | None = None,
        q_scale: torch.Tensor | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(heads, eps, cos_table, sin_table, positions, window, q_scale, reduce)
        self.pool, self.slots, self.lengths = pool, slots, positions + 1

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        k_pool, v_pool = self.pool.layer(layer)
        kernels.batch_kv_write(k_pool, v_pool, k, v, self.slots, self.positions)
        return kernels.batch_decode_attention(
            q, k_pool, v_pool, self.slots, self.lengths, self.heads[2] ** -0.5, self.window
        )
