"""The one pre-norm decoder layer (GQA attention + SwiGLU) over pluggable per-step ops.

The target model (SDPA for prefill, the fused kernels for decode / verify: `engine.fast_path`)
and the EAGLE draft heads (inference over their own cache, training over [B, T] windows) all run
`run_layers`; what differs between them is a `StepOps` object built for one forward step:

- `add_norm(delta, resid, w)`: the residual add and RMSNorm (fused by the kernel ops);
- `rotate(qkv, H, Hkv)`: RoPE (and Llama-4 query scaling) of the q and k heads;
- `attend(layer, q, k, v)`: store k/v where the step keeps them and attend over them;
- `reduce(x)`: the tensor-parallel all-reduce of a row-parallel projection (identity alone).

The residual stream is carried as (resid, delta): layer i's output is resid + delta, which the
next `add_norm` adds while it normalises, so a fused kernel does both in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

from engine.kernels import cpu_linear
from engine.kernels.cpu_linear import linear
from engine.kv_cache import KVCache
from engine.quant import QuantWeight, StackedWeight
from engine.rope import apply_rope

Matrix = torch.Tensor | QuantWeight | StackedWeight  # GGUF blocks as stored (CPU)


class LayerWeights(Protocol):
    attn_norm: torch.Tensor  # [dim]
    wqkv: Matrix  # [(H + 2 Hkv) * D, in]: q rows, then k, then v
    wo: Matrix  # [dim, H * D]
    ffn_norm: torch.Tensor  # [dim]
    w13: Matrix  # [2 * hidden, dim]: gate rows then up rows
    w2: Matrix  # [dim, hidden]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm computed in fp32 and cast back, as transformers does."""
    if x.dtype == torch.float32:  # one fused op; same math as below
        return F.rms_norm(x, weight.shape, weight, eps)
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


class StepOps:
    """Ops of one forward step in plain torch, minus `attend` (subclasses pick the attention).

    cos/sin [..., T, 1, D] and q_scale [..., T, 1, 1] (or None) are the step's positions'."""

    def __init__(
        self,
        heads: tuple[int, int, int],
        eps: float,
        cos: torch.Tensor,
        sin: torch.Tensor,
        q_scale: torch.Tensor | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.heads, self.eps = heads, eps
        self.cos, self.sin, self.q_scale = cos, sin, q_scale
        self._reduce = reduce

    def add_norm(
        self, delta: torch.Tensor, resid: torch.Tensor | None, weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        fused = cpu_linear.add_rmsnorm(delta, resid, weight, self.eps)  # CPU decode steps
        if fused is not None:
            return fused
        x = delta if resid is None else resid + delta
        return rms_norm(x, weight, self.eps), x

    def rotate(self, qkv: torch.Tensor, H: int, Hkv: int) -> tuple[torch.Tensor, torch.Tensor]:
        qk = apply_rope(qkv[..., : H + Hkv, :], self.cos, self.sin)  # one rotation for both
        q, k = qk[..., :H, :], qk[..., H:, :]
        if self.q_scale is not None:
            q = q * self.q_scale
        return q, k

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        return x if self._reduce is None else self._reduce(x)


def attention(ops: StepOps, i: int, lay: LayerWeights, h: torch.Tensor) -> torch.Tensor:
    """The attention sub-block's output [..., T, dim] for normed input h [..., T, in]."""
    H, Hkv, D = ops.heads
    lead = h.shape[:-1]
    qkv = linear(h, lay.wqkv).view(*lead, H + 2 * Hkv, D)
    q, k = ops.rotate(qkv, H, Hkv)
    o = ops.attend(i, q, k, qkv[..., H + Hkv :, :])
    return ops.reduce(linear(o.reshape(*lead, H * D), lay.wo))


def mlp(ops: StepOps, lay: LayerWeights, h: torch.Tensor) -> torch.Tensor:
    gate, up = linear(h, lay.w13).chunk(2, dim=-1)
    return ops.reduce(linear(F.silu(gate) * up, lay.w2))


def run_layers(
    ops: StepOps,
    layers: Sequence[LayerWeights],
    x: torch.Tensor,
    final_norm: torch.Tensor | None,
    *,
    first_input: torch.Tensor | None = None,
    capture: Sequence[int] = (),
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Run `layers` on the residual stream x [..., T, dim]; returns (the last layer's output,
    normed by `final_norm` when given, {i: output of layer i} for the layers in `capture`).

    `first_input` replaces layer 0's normed input (EAGLE heads: no norm, or a wider input)."""
    wanted = set(capture)
    captured: dict[int, torch.Tensor] = {}
    delta, resid = x, None
    for i, lay in enumerate(layers):
        if i == 0 and first_input is not None:
            h, resid = first_input, x
        else:
            h, resid = ops.add_norm(delta, resid, lay.attn_norm)
            if i - 1 in wanted:
                captured[i - 1] = resid
        h, resid = ops.add_norm(attention(ops, i, lay, h), resid, lay.ffn_norm)
        delta = mlp(ops, lay, h)
    last = len(layers) - 1
    if final_norm is None:
        out = resid + delta if resid is not None else delta
        if last in wanted:
            captured[last] = out
        return out, captured
    out, resid = ops.add_norm(delta, resid, final_norm)
    if last in wanted:
        captured[last] = resid
    return out, captured


SHORT_STEP = 16  # steps of at most this many tokens are decode / speculative verify


def rope_matrices(cos: torch.Tensor, sin: torch.Tensor, D: int) -> torch.Tensor:
    """[T, D, D] matrices M with x @ M[t] = x * cos[t] + rotate_half(x) * sin[t] (cos/sin
    [T, D]): RoPE of every head of a token in one matmul."""
    half = D // 2
    idx = torch.arange(half, device=cos.device)
    swap = torch.zeros(D, D, dtype=cos.dtype, device=cos.device)
    swap[idx + half, idx] = -1.0  # rotate_half(x)[j] = -x[j + half] for j < half
    swap[idx, idx + half] = 1.0  # and x[j - half] for j >= half
    return torch.diag_embed(cos) + swap * sin[:, None, :]


class CacheOps(StepOps):
    """Attention through SDPA over a `KVCache` (one sequence): the step's keys/values go to
    positions start .. end-1, queries attend to cached positions [lo, end) under `mask`, or
    plain causal, or (one query) unmasked."""

    def __init__(
        self,
        base: tuple[tuple[int, int, int], float, torch.Tensor, torch.Tensor],
        cache: KVCache,
        span: tuple[int, int, int],
        mask: torch.Tensor | None = None,
        causal: bool = False,
        q_scale: torch.Tensor | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(*base, q_scale, reduce)
        self.cache, (self.start, self.end, self.lo) = cache, span
        self.mask, self.causal = mask, causal
        self.rope_matrix: torch.Tensor | None = None
        T, D = self.end - self.start, self.heads[2]
        if T <= SHORT_STEP:  # decode / verify: RoPE as one small batched matmul per layer
            self.rope_matrix = rope_matrices(self.cos[:, 0], self.sin[:, 0], D)

    def rotate(self, qkv: torch.Tensor, H: int, Hkv: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rope_matrix is None:
            return super().rotate(qkv, H, Hkv)
        qk = torch.bmm(qkv[:, : H + Hkv], self.rope_matrix)  # [T, H+Hkv, D] @ [T, D, D]
        q, k = qk[:, :H], qk[:, H:]
        return (q if self.q_scale is None else q * self.q_scale), k

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        H, Hkv, D = self.heads
        self.cache.write(layer, self.start, k, v)
        keys, values = self.cache.view(layer, self.lo, self.end)
        if q.shape[0] == 1 and q.dtype == torch.float32:  # one query: no mask, three ops
            scores = torch.bmm(q.reshape(Hkv, H // Hkv, D), keys.transpose(1, 2))
            probs = torch.softmax(scores.mul_(D**-0.5), dim=-1)  # [Hkv, H/Hkv, keys]
            return torch.bmm(probs, values).view(1, H, D)
        o = F.scaled_dot_product_attention(
            q.transpose(0, 1)[None],  # [1, H, T, D]
            keys[None],
            values[None],
            attn_mask=self.mask,
            is_causal=self.causal,
            enable_gqa=Hkv != H,
        )
        return o[0].transpose(0, 1)


def cache_ops(
    heads: tuple[int, int, int],
    eps: float,
    cos_table: torch.Tensor,
    sin_table: torch.Tensor,
    positions: torch.Tensor,
    cache: KVCache,
    end: int,
    window: int | None = None,
    q_scale: torch.Tensor | None = None,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> CacheOps:
    """SDPA ops for T tokens at consecutive `positions` [T] = end-T .. end-1: causal, with the
    sliding `window` when the model has one."""
    T = positions.shape[0]
    start = end - T
    lo = max(0, end - window) if (window and T == 1) else 0
    # One query attends to everything in [lo, end) without a mask; a first chunk is plain
    # causal; anything else (chunked prefill, windows) needs an explicit mask.
    mask, causal = None, False
    if T > 1:
        if start == 0 and not (window and window < T):
            causal = True
        else:
            keys = torch.arange(lo, end, device=positions.device)[None, :]
            mask = keys <= positions[:, None]
            if window:
                mask &= keys > positions[:, None] - window
    if q_scale is not None:
        q_scale = q_scale.to(cos_table.dtype)[:, None, None]  # [T, 1, 1]
    cos, sin = cos_table[positions][:, None, :], sin_table[positions][:, None, :]
    return CacheOps((heads, eps, cos, sin), cache, (start, end, lo), mask, causal, q_scale, reduce)
