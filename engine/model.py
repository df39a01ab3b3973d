"""The transformer: RMSNorm, GQA attention over a static KV cache, SwiGLU, fused projections.

Weights live in fused tensors (qkv, gate|up) so each layer runs 4 matmuls; `weight_targets()`
maps every checkpoint tensor name to its destination rows and a shard function, the single place
tensor parallelism changes to load one rank's slices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from engine import fast_path, gpu_quant
from engine.config import ModelConfig
from engine.fast_path import KernelOps
from engine.kernels import cpu_decode
from engine.kernels.cpu_linear import linear
from engine.kv_cache import KVCache
from engine.layer import SHORT_STEP, Matrix, StepOps, cache_ops, rms_norm, run_layers
from engine.parallel.shard import SINGLE, TPContext
from engine.quant import KEPT, QuantWeight, StackedWeight, weight_nbytes
from engine.rope import llama4_query_scale, rope_tables

ShardFn = Callable[[torch.Tensor], torch.Tensor]
__all__ = ["ForwardOutput", "Layer", "Matrix", "Transformer", "WeightTarget", "rms_norm"]


def _whole(t: torch.Tensor) -> torch.Tensor:
    return t


@dataclass
class WeightTarget:
    """Where a checkpoint tensor goes: `param[rows[0]:rows[1]]` (or all of it) after `shard`."""

    param: Matrix
    rows: tuple[int, int] | None = None
    shard: ShardFn = _whole

    def dest(self) -> Matrix:
        return self.param if self.rows is None else self.param[self.rows[0] : self.rows[1]]


@dataclass
class ForwardOutput:
    """logits [T or 1, V]; hidden: final normed hidden states [T, dim];
    layer_hidden: {i: output of layer i [T, dim]} for the requested layers."""

    logits: torch.Tensor
    hidden: torch.Tensor
    layer_hidden: dict[int, torch.Tensor] = field(default_factory=dict)


@dataclass
class Layer:
    attn_norm: torch.Tensor  # [dim]
    wqkv: Matrix  # [(H + 2 Hkv) * D, dim]
    wo: Matrix  # [dim, H * D]
    ffn_norm: torch.Tensor  # [dim]
    w13: Matrix  # [2 * hidden, dim]: gate rows then up rows
    w2: Matrix  # [dim, hidden]


class Transformer:
    """Decoder-only model, whole or one tensor-parallel rank's shard (`tp`). Tensors are
    allocated empty and filled by the loader; `local` has this rank's head/FFN/vocab sizes.
    `quant` (canonical name -> GGML type, CPU only): matrices whose checkpoint
    tensors all have one kept type are `QuantWeight`s of that type; `dtype` is then the
    activations' (and norms') dtype."""

    def __init__(
        self,
        cfg: ModelConfig,
        max_len: int,
        dtype: torch.dtype,
        device: torch.device,
        tp: TPContext = SINGLE,
        quant: Mapping[str, int | str] | None = None,
    ) -> None:
        self.cfg, self.max_len, self.dtype, self.device = cfg, max_len, dtype, device
        self.tp, self.local = tp, tp.local_config(cfg)
        lc = self.local
        H, Hkv, D, dim = lc.n_heads, lc.n_kv_heads, cfg.head_dim, cfg.dim

        quant = quant or {}

        def empty(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=dtype, device=device)

        def matrix(rows: int, cols: int, *names: str, split: tuple[int, ...] = ()) -> Matrix:
            types = {quant.get(n) for n in names}
            (qtype,) = types if len(types) == 1 else (None,)
            on_cpu = device.type == "cpu"  # every tensor-parallel rank alike
            if qtype in KEPT and on_cpu:
                return QuantWeight.empty(rows, cols, qtype)
            if len(types) > 1 and on_cpu and split and types & KEPT:  # parts of mixed types
                return StackedWeight(
                    [matrix(r, cols, n) for r, n in zip(split, names, strict=True)]
                )
            if isinstance(qtype, str):  # a GPU kind: engine.gpu_quant (int8, int4-g32, fp8...)
                return gpu_quant.empty(qtype, rows, cols, device)
            return empty(rows, cols)

        def proj(i: int, *names: str) -> list[str]:
            return [f"model.layers.{i}.{n}.weight" for n in names]

        self.embed = matrix(lc.vocab_size, dim, "model.embed_tokens.weight")
        self.layers = [
            Layer(
                attn_norm=empty(dim),
                wqkv=matrix(
                    (H + 2 * Hkv) * D,
                    dim,
                    *proj(i, "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                    split=(H * D, Hkv * D, Hkv * D),
                ),
                wo=matrix(dim, H * D, *proj(i, "self_attn.o_proj")),
                ffn_norm=empty(dim),
                w13=matrix(
                    2 * lc.hidden_dim,
                    dim,
                    *proj(i, "mlp.gate_proj", "mlp.up_proj"),
                    split=(lc.hidden_dim, lc.hidden_dim),
                ),
                w2=matrix(dim, lc.hidden_dim, *proj(i, "mlp.down_proj")),
            )
            for i in range(cfg.n_layers)
        ]
        self.norm = empty(dim)
        self.lm_head = (
            self.embed if cfg.tie_embeddings else matrix(lc.vocab_size, dim, "lm_head.weight")
        )
        cos, sin = rope_tables(cfg, max_len)
        self.cos = cos.to(device=device, dtype=dtype)
        self.sin = sin.to(device=device, dtype=dtype)

    def weight_targets(self) -> dict[str, WeightTarget]:
        """Canonical (transformers) tensor name -> destination. Tied heads have no entry."""
        cfg, lc = self.cfg, self.local
        q, kv, hid = lc.n_heads * cfg.head_dim, lc.n_kv_heads * cfg.head_dim, lc.hidden_dim
        t = {
            "model.embed_tokens.weight": WeightTarget(self.embed),
            "model.norm.weight": WeightTarget(self.norm),
        }
        if not cfg.tie_embeddings:
            t["lm_head.weight"] = WeightTarget(self.lm_head)
        for i, lay in enumerate(self.layers):
            p = f"model.layers.{i}."
            t[p + "input_layernorm.weight"] = WeightTarget(lay.attn_norm)
            t[p + "self_attn.q_proj.weight"] = WeightTarget(lay.wqkv, (0, q))
            t[p + "self_attn.k_proj.weight"] = WeightTarget(lay.wqkv, (q, q + kv))
            t[p + "self_attn.v_proj.weight"] = WeightTarget(lay.wqkv, (q + kv, q + 2 * kv))
            t[p + "self_attn.o_proj.weight"] = WeightTarget(lay.wo)
            t[p + "post_attention_layernorm.weight"] = WeightTarget(lay.ffn_norm)
            t[p + "mlp.gate_proj.weight"] = WeightTarget(lay.w13, (0, hid))
            t[p + "mlp.up_proj.weight"] = WeightTarget(lay.w13, (hid, 2 * hid))
            t[p + "mlp.down_proj.weight"] = WeightTarget(lay.w2)
        return self.tp.assign_shards(t, cfg)

    def quantized_names(self) -> set[str]:
        """Canonical names of the checkpoint tensors that load as stored blocks."""
        return {n for n, t in self.weight_targets().items() if isinstance(t.dest(), QuantWeight)}

    def new_cache(self) -> KVCache:
        c = self.local
        shape = (c.n_layers, c.n_kv_heads, self.max_len, c.head_dim)
        return KVCache(*shape, self.dtype, self.device, cpu_decode.cache_storage(self))

    def _embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.tp.embed(self.embed, input_ids, self.dtype)  # [T, dim]

    def step_ops(self, positions: torch.Tensor, cache: KVCache, end: int | torch.Tensor) -> StepOps:
        """The ops of a step at `positions` ending at `end - 1`: the fused kernels for a short
        step when they apply (`end` may then be a device tensor), else SDPA."""
        cfg = self.cfg
        heads = (self.local.n_heads, self.local.n_kv_heads, cfg.head_dim)
        args = (heads, cfg.norm_eps, self.cos, self.sin)
        q_scale = llama4_query_scale(cfg, positions)
        window = cfg.sliding_window or None
        if fast_path.wanted(self.norm, positions.shape[0]):  # decode / verify: Triton kernels
            return KernelOps(*args, positions, cache, end, window, q_scale, self.tp.reduce)
        if not isinstance(end, int):
            raise ValueError("a device-side length needs the fused-kernel path")
        return cache_ops(*args, positions, cache, end, window, q_scale, self.tp.reduce)

    @torch.inference_mode()
    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
        *,
        all_logits: bool = False,
        capture_layers: Sequence[int] = (),
        length: torch.Tensor | None = None,
    ) -> ForwardOutput:
        """Run T new tokens at consecutive `positions` [T], writing their keys/values into
        `cache`; attention sees every cached position before them. Sets cache.length, unless
        `length` (the length after this step, on the device) is given: then the step makes no
        host sync (a CUDA graph capture, `engine.graphs`) and the caller keeps the length."""
        end: int | torch.Tensor
        if length is None:
            end = int(positions[0]) + input_ids.shape[0]
            if end > cache.max_len:
                raise ValueError(f"positions up to {end} exceed the cache ({cache.max_len})")
        else:
            end = length
        x = self._embed(input_ids)
        fused, captured = None, None
        if length is None and x.shape[0] <= SHORT_STEP:
            fused = cpu_decode.fused_layers(self)  # the C step: CPU, fp32 activations
        if fused is not None:
            captured = fused.run(x, positions.tolist(), [cache] * x.shape[0], capture_layers)
        if captured is not None:
            hidden = rms_norm(x, self.norm, self.cfg.norm_eps)
        else:
            ops = self.step_ops(positions, cache, end)
            hidden, captured = run_layers(ops, self.layers, x, self.norm, capture=capture_layers)
        if length is None:
            cache.length = end
        logits = linear(hidden if all_logits else hidden[-1:], self.lm_head)
        logits = self.tp.gather_logits(logits, self.cfg.vocab_size)
        return ForwardOutput(logits=logits, hidden=hidden, layer_hidden=captured)

    def weight_bytes(self) -> int:
        """Weight bytes one decode step reads: every layer, the final norm and the whole head
        (the embedding contributes a single row)."""
        tensors = [self.norm, self.lm_head] + [t for lay in self.layers for t in vars(lay).values()]
        return sum(weight_nbytes(t) for t in tensors)
