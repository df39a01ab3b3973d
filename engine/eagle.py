"""EAGLE draft heads: EAGLE-1 (Mistral/vLLM `eagle_linear`/`fc` 2H->H + decoder layers) and
EAGLE-3 (three target layers fused 3H->H, a 2H-input first layer, own reduced-vocab LM head).

A head shares the target's embedding (and, for EAGLE-1, its LM head). Draft position p holds the
pair (token p+1, feature of target position p), as in vLLM and llama.cpp.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch
import torch.nn.functional as F

from engine.config import ModelConfig
from engine.kernels.cpu_linear import linear
from engine.kv_cache import KVCache
from engine.layer import StepOps, cache_ops, rms_norm, run_layers
from engine.model import ForwardOutput, Layer, Transformer
from engine.quant import embed_rows
from engine.rope import llama4_query_scale, rope_tables

EAGLE1, EAGLE3 = "eagle1", "eagle3"


@dataclass
class DraftOutput:
    """logits [1, target vocab] of the last pair (draft-vocab logits mapped back; None when
    not asked for); hidden [T, H]: the state fed to the next draft step."""

    logits: torch.Tensor | None
    hidden: torch.Tensor


@dataclass(frozen=True)
class HeadSpec:
    """Shape and variant of a draft head; `cfg` carries dims, RoPE and vocabulary of the head.

    first_layer_norm: EAGLE-1 heads from the original EAGLE repo drop layer 0's input norm.
    final_norm: Mistral's heads normalise the last layer's output (the state and LM-head input).
    target_layers: EAGLE-3 reads the *inputs* of these target layers (vLLM's convention).
    """

    kind: str
    cfg: ModelConfig
    first_layer_norm: bool = True
    final_norm: bool = True
    draft_vocab_size: int | None = None
    target_layers: tuple[int, ...] = ()
    target_dim: int = 0

    @property
    def capture_layers(self) -> tuple[int, ...]:
        """Target layers whose outputs the features need (input of layer j = output of j-1)."""
        return tuple(j - 1 for j in self.target_layers) if self.kind == EAGLE3 else ()


def default_target_layers(n_layers: int) -> tuple[int, int, int]:
    """EAGLE-3's (2, L/2, L-3), clamped so small targets still have three valid layers."""
    lo, mid, hi = (min(max(i, 1), n_layers - 1) for i in (2, n_layers // 2, n_layers - 3))
    return lo, mid, hi


class ChainAttention(Protocol):
    """Training-time test attention (the trainer's `DraftChain`): keys/values of the earlier
    passes of a chain, and the mask over them (None: plain causal)."""

    mask: torch.Tensor | None

    def attend(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class WindowOps(StepOps):
    """Training attention over [B, T] windows without a cache: causal, or along a chain."""

    def __init__(
        self,
        heads: tuple[int, int, int],
        eps: float,
        cos: torch.Tensor,
        sin: torch.Tensor,
        q_scale: torch.Tensor | None,
        chain: ChainAttention | None = None,
    ) -> None:
        super().__init__(heads, eps, cos, sin, q_scale)
        self.chain = chain

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        H, Hkv, _ = self.heads
        q, k, v = q.transpose(-2, -3), k.transpose(-2, -3), v.transpose(-2, -3)  # [.., H, T, D]
        mask, causal = None, q.shape[-2] > 1
        if self.chain is not None:
            k, v = self.chain.attend(layer, k, v)
            mask, causal = self.chain.mask, self.chain.mask is None
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=Hkv != H
        )
        return o.transpose(-2, -3)


class EagleHead:
    """Draft head tensors plus its forward pass; embedding (and EAGLE-1 LM head) are shared."""

    def __init__(self, spec: HeadSpec, target: Transformer) -> None:
        cfg, dt, dev = spec.cfg, target.dtype, target.device
        if spec.kind not in (EAGLE1, EAGLE3):
            raise ValueError(f"unknown EAGLE head kind {spec.kind!r}")
        self.spec, self.cfg, self.target = spec, cfg, target
        self.dtype, self.device = dt, dev
        H, Hkv, D, dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.dim
        tdim = spec.target_dim or target.cfg.dim

        def empty(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=dt, device=dev)

        fc_in = 3 * tdim if spec.kind == EAGLE3 else 2 * dim
        self.fc = empty(dim, fc_in)
        attn_in = [
            2 * dim if (spec.kind == EAGLE3 and i == 0) else dim for i in range(cfg.n_layers)
        ]
        self.layers = [
            Layer(
                attn_norm=empty(dim),
                wqkv=empty((H + 2 * Hkv) * D, attn_in[i]),
                wo=empty(dim, H * D),
                ffn_norm=empty(dim),
                w13=empty(2 * cfg.hidden_dim, dim),
                w2=empty(dim, cfg.hidden_dim),
            )
            for i in range(cfg.n_layers)
        ]
        self.norm = empty(dim)
        self.embed = target.embed
        vd = spec.draft_vocab_size or target.cfg.vocab_size
        # Draft id i is target id i + d2t[i] (the EAGLE-3 / vLLM convention). An EAGLE-1 head may
        # also carry one: it then drafts over those rows of the shared LM head only (FR-Spec).
        self.d2t = torch.zeros(vd, dtype=torch.long, device=dev)
        self._to_target = self.draft_to_target  # refreshed by prepare() once d2t is loaded
        self.lm_head = target.lm_head
        if spec.kind == EAGLE3:
            self.hidden_norm = empty(dim)
            self.lm_head = empty(vd, dim)
        cos, sin = rope_tables(cfg, target.max_len)
        self.cos, self.sin = cos.to(device=dev, dtype=dt), sin.to(device=dev, dtype=dt)

    # -- structure ---------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def capture_layers(self) -> tuple[int, ...]:
        return self.spec.capture_layers

    def target_features(self, out: ForwardOutput) -> torch.Tensor:
        """Features [T, F] of the target's tokens: final normed hidden (EAGLE-1) or the
        concatenated captured layers (EAGLE-3, fused by `fc` inside `forward`)."""
        if self.kind == EAGLE1:
            return out.hidden
        return torch.cat([out.layer_hidden[i] for i in self.capture_layers], dim=-1)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The head's own tensors under canonical (HF-style) names; shared ones excluded."""
        t = {"fc.weight": self.fc, "norm.weight": self.norm}
        q = self.cfg.n_heads * self.cfg.head_dim
        kv = self.cfg.n_kv_heads * self.cfg.head_dim
        hid = self.cfg.hidden_dim
        for i, lay in enumerate(self.layers):
            p = f"layers.{i}."
            t[p + "input_layernorm.weight"] = lay.attn_norm
            t[p + "self_attn.q_proj.weight"] = lay.wqkv[:q]
            t[p + "self_attn.k_proj.weight"] = lay.wqkv[q : q + kv]
            t[p + "self_attn.v_proj.weight"] = lay.wqkv[q + kv :]
            t[p + "self_attn.o_proj.weight"] = lay.wo
            t[p + "post_attention_layernorm.weight"] = lay.ffn_norm
            t[p + "mlp.gate_proj.weight"] = lay.w13[:hid]
            t[p + "mlp.up_proj.weight"] = lay.w13[hid:]
            t[p + "mlp.down_proj.weight"] = lay.w2
        if not self.spec.first_layer_norm:
            del t["layers.0.input_layernorm.weight"]
        if not self.spec.final_norm:
            del t["norm.weight"]
        if self.kind == EAGLE3:
            t["layers.0.hidden_norm.weight"] = self.hidden_norm
            t["lm_head.weight"] = self.lm_head
        if self.reduced_vocab:
            t["d2t"] = self.d2t
        return t

    @property
    def reduced_vocab(self) -> bool:
        return self.kind == EAGLE3 or bool(self.spec.draft_vocab_size)

    def prepare(self) -> None:
        """Call once the weights are in: slices the shared LM head for a reduced EAGLE-1 vocab
        and fixes the draft -> target id map used while drafting."""
        self._to_target = self.draft_to_target
        if self.kind == EAGLE1 and self.reduced_vocab:
            head = self.target.lm_head[self._to_target].contiguous()
            pack = getattr(head, "pack", None)  # rows of a quantized head: the kernel's tiles
            if callable(pack):
                pack()
            self.lm_head = head

    def trainable(self) -> list[torch.Tensor]:
        """Distinct learnable tensors (fused qkv / gate-up once each)."""
        out = [self.fc, self.norm]
        for lay in self.layers:
            out += [lay.attn_norm, lay.wqkv, lay.wo, lay.ffn_norm, lay.w13, lay.w2]
        if self.kind == EAGLE3:
            out += [self.hidden_norm, self.lm_head]
        return out

    def new_cache(self) -> KVCache:
        c = self.cfg
        return KVCache(
            c.n_layers, c.n_kv_heads, self.target.max_len, c.head_dim, self.dtype, self.device
        )

    # -- forward -----------------------------------------------------------------------------

    def vocab_logits(self, state: torch.Tensor) -> torch.Tensor:
        """Logits over the head's own (possibly reduced) vocabulary (also what training fits)."""
        if self.kind == EAGLE3:
            state = rms_norm(state, self.norm, self.cfg.norm_eps)
        return linear(state, self.lm_head)  # EAGLE-1 states are already post-norm

    def draft_logits(self, state: torch.Tensor) -> torch.Tensor:
        """Target-vocabulary logits [..., V] for draft states [..., H]."""
        logits = self.vocab_logits(state)
        if not self.reduced_vocab:
            return logits
        full = logits.new_full((*logits.shape[:-1], self.target.cfg.vocab_size), float("-inf"))
        full[..., self._to_target] = logits
        return full

    def greedy_token(self, state: torch.Tensor) -> torch.Tensor:
        """The target id [1] of the most likely draft for one state [1, H]: the argmax over
        the draft vocabulary, without building target-vocabulary logits."""
        best = self.vocab_logits(state[-1:]).argmax(-1)
        return self._to_target[best] if self.reduced_vocab else best

    @property
    def draft_to_target(self) -> torch.Tensor:
        return torch.arange(self.d2t.shape[0], device=self.device) + self.d2t

    def run(
        self,
        tokens: torch.Tensor,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache | None,
        from_target: bool,
        chain: ChainAttention | None = None,
    ) -> torch.Tensor:
        """Draft states [..., T, H] for tokens [..., T] and features/states [..., T, F].

        With a cache (unbatched), keys/values are written at `positions` and attention sees
        every cached position; without one (training, [B, T]) attention is plain causal, or
        with a `chain`, over its earlier passes' keys as well (training-time test).
        The returned state is both the LM-head input (after `draft_logits`) and the next step's
        hidden: post-norm for EAGLE-1 with a final norm, pre-norm for EAGLE-3.
        """
        cfg = self.cfg
        emb = embed_rows(self.embed, tokens, self.dtype)
        if self.kind == EAGLE3 and from_target:
            hidden = linear(hidden, self.fc)
        ops = self._ops(positions, cache, chain)
        if self.kind == EAGLE1:
            x = linear(torch.cat((emb, hidden), dim=-1), self.fc)
            first = None if self.spec.first_layer_norm else x
            final = self.norm if self.spec.final_norm else None
            return run_layers(ops, self.layers, x, final, first_input=first)[0]
        e = rms_norm(emb, self.layers[0].attn_norm, cfg.norm_eps)
        h0 = torch.cat((e, rms_norm(hidden, self.hidden_norm, cfg.norm_eps)), dim=-1)
        return run_layers(ops, self.layers, hidden, None, first_input=h0)[0]

    def _ops(
        self, positions: torch.Tensor, cache: KVCache | None, chain: ChainAttention | None
    ) -> StepOps:
        cfg = self.cfg
        heads = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim)
        q_scale = llama4_query_scale(cfg, positions)
        if cache is not None:
            end = int(positions[0]) + positions.shape[0]
            return cache_ops(
                heads, cfg.norm_eps, self.cos, self.sin, positions, cache, end, None, q_scale
            )
        cos = self.cos[positions].unsqueeze(-2)  # [..., T, 1, D]
        sin = self.sin[positions].unsqueeze(-2)
        if q_scale is not None:
            q_scale = q_scale.to(self.dtype)[..., None, None]
        return WindowOps(heads, cfg.norm_eps, cos, sin, q_scale, chain)

    @torch.inference_mode()
    def forward(
        self,
        tokens: torch.Tensor,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
        from_target: bool,
        logits: bool = True,
    ) -> DraftOutput:
        """Inference step over T pairs at consecutive positions; logits of the last pair only
        (skipped with logits=False: greedy drafting takes `greedy_token(hidden)` instead)."""
        if int(positions[-1]) >= cache.max_len:
            raise ValueError(f"draft positions up to {int(positions[-1])} exceed the cache")
        state = self.run(tokens, hidden, positions, cache, from_target)
        cache.length = int(positions[-1]) + 1
        return DraftOutput(logits=self.draft_logits(state[-1:]) if logits else None, hidden=state)


def head_spec_for(
    target: Transformer,
    kind: str = EAGLE1,
    n_layers: int = 1,
    draft_vocab_size: int | None = None,
    target_layers: tuple[int, ...] | None = None,
) -> HeadSpec:
    """A head shaped like one decoder layer of `target` (the usual EAGLE geometry)."""
    cfg = replace(target.cfg, n_layers=n_layers, sliding_window=None)
    layers = () if kind == EAGLE1 else (target_layers or default_target_layers(target.cfg.n_layers))
    return HeadSpec(
        kind=kind,
        cfg=cfg,
        draft_vocab_size=draft_vocab_size,
        target_layers=tuple(layers),
        target_dim=target.cfg.dim,
    )


def random_head(
    spec: HeadSpec, target: Transformer, seed: int = 0, scale: float = 1.0
) -> EagleHead:
    """A head with random weights (tests and benchmarks of the mechanics)."""
    head = EagleHead(spec, target)
    gen = torch.Generator().manual_seed(seed)
    for t in head.trainable():
        if t.dim() == 1:
            t.copy_(torch.ones(t.shape))
        else:
            t.copy_(torch.randn(t.shape, generator=gen) * (scale / t.shape[-1] ** 0.5))
    if head.reduced_vocab:
        vd = head.d2t.shape[0]
        # A random subset of the target vocabulary, in increasing order, as d2t offsets.
        ids = torch.randperm(target.cfg.vocab_size, generator=gen)[:vd].sort().values
        head.d2t.copy_(ids.to(head.device) - torch.arange(vd, device=head.device))
    head.prepare()
    return head
