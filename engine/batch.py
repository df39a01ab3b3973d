"""Batched decoding for continuous batching: many sequences, one forward step for all of them.

Each sequence lives in its own `Decoder` (a KV-cache slot of the model's full length): prefill
runs per sequence through the decoder (so it reuses whatever prefix its slot still holds), and a
decode step runs the B sequences' next tokens through the model as one [B, dim] batch, so every
weight matrix is read once per step for all of them. Attention stays per sequence (each query
attends to its own slot, exactly as a one-sequence decode step does).

Slots outlive their sequences: a finished sequence's tokens stay cached, and a new prompt takes
the free slot sharing its longest prefix, or copies that prefix from any other slot (the prefix
cache across requests: a system prompt every session shares is computed once).

Slot memory: on CPU each slot's cache is allocated when the slot is first used. When the fused
kernels run (CUDA; `VIBE_KERNELS=triton` under the interpreter) every slot is a view into one
`KVPool` reserved up front, and a step runs through `BatchKernelOps`: one batched Triton decode
attention over all the sequences' slots, each at its own length, with no host sync.

Tokenizer-free and policy-free: the scheduler (`vibe serve`) decides who runs; this module only
holds the slots and runs the steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine import fast_path
from engine.decoder import Decoder, common_prefix
from engine.errors import EngineOutOfMemory
from engine.kernels import cpu_decode
from engine.kernels.cpu_linear import linear
from engine.kv_cache import KVCache, KVPool
from engine.layer import StepOps, rms_norm, run_layers
from engine.model import Transformer
from engine.rope import llama4_query_scale

MIN_COPY = 16  # shorter shared prefixes are cheaper to recompute than to copy


def batchable(model: Transformer) -> bool:
    """Batched steps apply to a model on one device (not a tensor-parallel driver)."""
    return type(model) is Transformer and model.tp.size == 1


class BatchOps(StepOps):
    """One decode token per sequence: row b is at position positions[b] of caches[b]."""

    def __init__(
        self,
        model: Transformer,
        caches: Sequence[KVCache],
        positions: torch.Tensor,
        starts: Sequence[int],
    ) -> None:
        cfg = model.cfg
        heads = (model.local.n_heads, model.local.n_kv_heads, cfg.head_dim)
        q_scale = llama4_query_scale(cfg, positions)
        if q_scale is not None:
            q_scale = q_scale.to(model.cos.dtype)[:, None, None]
        cos, sin = model.cos[positions][:, None, :], model.sin[positions][:, None, :]
        super().__init__(heads, cfg.norm_eps, cos, sin, q_scale, model.tp.reduce)
        self.caches, self.starts = caches, starts
        self.window = cfg.sliding_window or None

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        H, Hkv, _ = self.heads
        out = []
        for b, (cache, pos) in enumerate(zip(self.caches, self.starts, strict=True)):
            cache.write(layer, pos, k[b : b + 1], v[b : b + 1])
            lo = max(0, pos + 1 - self.window) if self.window else 0
            keys, values = cache.view(layer, lo, pos + 1)
            o = F.scaled_dot_product_attention(
                q[b : b + 1].transpose(0, 1)[None], keys[None], values[None], enable_gqa=Hkv != H
            )
            out.append(o[0].transpose(0, 1))
        return torch.cat(out)


@dataclass
class SlotStats:
    slots: int  # allocated
    busy: int
    cached_tokens: int  # tokens held by all slots
    capacity_tokens: int  # slots * max_len
    nbytes: int


class BatchDecoder:
    """Up to `max_slots` decoders over one model; `acquire` a slot for a prompt, `prefill` it,
    `step` many slots at once, `release` it when the sequence ends."""

    def __init__(self, model: Transformer, max_slots: int) -> None:
        if max_slots < 1:
            raise ValueError(f"max_slots must be >= 1, got {max_slots}")
        self.model, self.max_slots = model, max_slots
        self.slots: list[Decoder] = []
        self.busy: set[int] = set()
        self.pool: KVPool | None = None  # the slots' caches when the fused kernels run
        if fast_path.wanted(model.norm, 1):
            c = model.local
            shape = (c.n_layers, c.n_kv_heads, model.max_len, c.head_dim)
            try:
                self.pool = KVPool(max_slots, *shape, model.dtype, model.device)
            except torch.OutOfMemoryError:
                gib = 2 * max_slots * math.prod(shape) * model.dtype.itemsize / 2**30
                raise EngineOutOfMemory(
                    f"the KV cache of {max_slots} sequences of {model.max_len} tokens needs "
                    f"{gib:.1f} GiB more than the device has: lower the batch size or the context"
                ) from None

    @property
    def max_len(self) -> int:
        return self.model.max_len

    def acquire(self, prompt: Sequence[int]) -> int:
        """A free slot for `prompt`: the one holding its longest prefix (a new one when none
        holds any and there is room), topped up with a longer prefix copied from another."""
        free = [i for i in range(len(self.slots)) if i not in self.busy]
        shared = {i: common_prefix(self.slots[i].ids, prompt) for i in range(len(self.slots))}
        if free and (max(shared[i] for i in free) > 0 or len(self.slots) >= self.max_slots):
            slot = max(free, key=lambda i: shared[i])
        elif len(self.slots) < self.max_slots:
            cache = None if self.pool is None else self.pool.slot(len(self.slots))
            self.slots.append(Decoder(self.model, cache))
            slot = len(self.slots) - 1
            shared[slot] = 0
        else:
            raise RuntimeError("every slot is busy")
        best = max(shared, key=lambda i: shared[i])
        n = min(shared[best], len(prompt) - 1)
        if n - shared[slot] >= MIN_COPY:
            self._copy_prefix(self.slots[best], self.slots[slot], n)
        self.busy.add(slot)
        return slot

    def release(self, slot: int, keep: bool = True) -> None:
        """Free a slot; its tokens stay cached for a later prompt unless `keep` is False."""
        self.busy.discard(slot)
        if not keep:
            self.slots[slot].reset()

    def ids(self, slot: int) -> list[int]:
        return self.slots[slot].ids

    def prefill(self, slot: int, prompt: Sequence[int]) -> tuple[torch.Tensor, int]:
        """Make the slot's sequence `prompt`; (next-token logits [V], tokens reused)."""
        out, reused = self.slots[slot].prefill(prompt)
        return out.logits[-1], reused

    def prefill_chunk(
        self, slot: int, prompt: Sequence[int], budget: int
    ) -> tuple[torch.Tensor | None, int]:
        """Run at most `budget` more tokens of `prompt` into the slot (chunked prefill: call
        again between decode steps until done). (next-token logits [V] once the whole prompt
        is in, else None; tokens of `prompt` the slot held before this chunk)."""
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        have = min(common_prefix(self.slots[slot].ids, prompt), len(prompt) - 1)
        end = min(len(prompt), have + budget)
        out, reused = self.slots[slot].prefill(prompt[:end])
        return (out.logits[-1] if end == len(prompt) else None), reused

    @torch.inference_mode()
    def step(self, slots: Sequence[int], tokens: Sequence[int]) -> torch.Tensor:
        """Append tokens[b] to slot slots[b] in one forward step; next-token logits [B, V]."""
        decs = [self.slots[s] for s in slots]
        if len(decs) == 1:  # the one-sequence path, CUDA graphs and fused kernels included
            return decs[0].step(tokens[0])[-1:]
        starts = [len(d.ids) for d in decs]
        if max(starts) >= self.max_len:
            raise ValueError(f"a sequence reached the end of the cache ({self.max_len})")
        model, dev = self.model, self.model.device
        positions = torch.tensor(starts, device=dev)
        x = model._embed(torch.tensor(list(tokens), dtype=torch.long, device=dev))
        fused = cpu_decode.fused_layers(model)  # CPU: one C call, attention per row included
        if fused is not None and fused.run(x, starts, [d.cache for d in decs]) is not None:
            hidden = rms_norm(x, model.norm, model.cfg.norm_eps)
        else:
            hidden, _ = run_layers(self._ops(slots, positions, starts), model.layers, x, model.norm)
        for d, tok in zip(decs, tokens, strict=True):
            d.ids.append(tok)
            d.cache.length = len(d.ids)
        logits = linear(hidden, model.lm_head)
        return model.tp.gather_logits(logits, model.cfg.vocab_size)

    def _ops(self, slots: Sequence[int], positions: torch.Tensor, starts: list[int]) -> StepOps:
        """The batched fused kernels over the pool where they run, else SDPA per sequence."""
        model = self.model
        if self.pool is not None and fast_path.wanted(model.norm, 1):
            cfg = model.cfg
            heads = (model.local.n_heads, model.local.n_kv_heads, cfg.head_dim)
            slot_ids = torch.tensor(list(slots), device=model.device)
            return fast_path.BatchKernelOps(
                heads, cfg.norm_eps, model.cos, model.sin, positions, self.pool, slot_ids,
                cfg.sliding_window or None, llama4_query_scale(cfg, positions), model.tp.reduce,
            )  # fmt: skip
        return BatchOps(model, [self.slots[s].cache for s in slots], positions, starts)

    def stats(self) -> SlotStats:
        if self.pool is not None:  # reserved up front
            nbytes = self.pool.nbytes()
        else:
            nbytes = sum(d.cache.nbytes() for d in self.slots)
        cached = sum(len(d.ids) for d in self.slots)
        return SlotStats(
            len(self.slots), len(self.busy), cached, len(self.slots) * self.max_len, nbytes
        )

    @staticmethod
    def _copy_prefix(src: Decoder, dst: Decoder, n: int) -> None:
        dst.cache.k[:, :, :n].copy_(src.cache.k[:, :, :n])
        dst.cache.v[:, :, :n].copy_(src.cache.v[:, :, :n])
        dst.ids[:] = src.ids[:n]
        dst.cache.length = n
