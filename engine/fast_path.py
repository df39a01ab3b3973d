"""The decode / speculative-verify forward pass through the fused kernels of `engine.kernels`.

`Transformer.forward` routes steps of at most MAX_TOKENS tokens here when the kernel dispatcher
picks Triton (CUDA, or `VIBE_KERNELS=triton` under `TRITON_INTERPRET=1`); prefill keeps SDPA.
The pass makes no host syncs when `length` is a device tensor, so it can be captured in a CUDA
graph (`engine.graphs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from engine import kernels
from engine.rope import llama4_query_scale

if TYPE_CHECKING:
    from engine.kv_cache import KVCache
    from engine.model import Transformer

MAX_TOKENS = 16  # decode (1) and speculative verify (K + 1); longer steps are prefill


def wanted(model: Transformer, n_tokens: int) -> bool:
    """True when a step of `n_tokens` should take the fused-kernel path."""
    return n_tokens <= MAX_TOKENS and kernels.backend_for(model.norm) == "triton"


def run(
    model: Transformer,
    input_ids: torch.Tensor,
    positions: torch.Tensor,
    cache: KVCache,
    length: int | torch.Tensor,
    all_logits: bool,
    capture_layers: Sequence[int] = (),
) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
    """(logits, final normed hidden [T, dim], {layer: output}) for T tokens at consecutive
    `positions` ending at `length - 1`; writes their keys/values into `cache` (not its length)."""
    cfg, tp = model.cfg, model.tp
    n_tok = input_ids.shape[0]
    H, Hkv, D = model.local.n_heads, model.local.n_kv_heads, cfg.head_dim
    eps, window = cfg.norm_eps, cfg.sliding_window or None
    cos, sin = model.cos[positions], model.sin[positions]  # [T, D]
    q_scale = llama4_query_scale(cfg, positions)
    if q_scale is not None:
        q_scale = q_scale.to(model.dtype)[:, None, None]
    wanted_layers = set(capture_layers)
    captured: dict[int, torch.Tensor] = {}

    # The residual stream is carried unnormalised; each norm also adds the previous sub-block's
    # output (one fused kernel), so layer i's output appears at the next norm.
    delta = tp.embed(model.embed, input_ids)
    residual: torch.Tensor | None = None
    for i, lay in enumerate(model.layers):
        h, residual = kernels.add_rmsnorm(delta, residual, lay.attn_norm, eps)
        if i - 1 in wanted_layers:
            captured[i - 1] = residual
        qkv = F.linear(h, lay.wqkv).view(n_tok, H + 2 * Hkv, D)
        q, k = kernels.apply_rotary(qkv[:, :H], qkv[:, H : H + Hkv], cos, sin)
        if q_scale is not None:
            q = q * q_scale
        k_cache, v_cache = cache.k[i].transpose(0, 1), cache.v[i].transpose(0, 1)
        kernels.kv_cache_write(k_cache, v_cache, k, qkv[:, H + Hkv :], positions)
        o = kernels.decode_attention(q, k_cache, v_cache, length, D**-0.5, window)
        attn = tp.reduce(F.linear(o.reshape(n_tok, H * D), lay.wo))
        h, residual = kernels.add_rmsnorm(attn, residual, lay.ffn_norm, eps)
        gate, up = F.linear(h, lay.w13).chunk(2, dim=-1)
        delta = tp.reduce(F.linear(F.silu(gate) * up, lay.w2))
    hidden, residual = kernels.add_rmsnorm(delta, residual, model.norm, eps)
    if len(model.layers) - 1 in wanted_layers:
        captured[len(model.layers) - 1] = residual
    logits = F.linear(hidden if all_logits else hidden[-1:], model.lm_head)
    return tp.gather_logits(logits, cfg.vocab_size), hidden, captured
