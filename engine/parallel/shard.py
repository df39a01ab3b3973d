"""Megatron-style sharding of the transformer over a tensor-parallel group, and the collectives
the model calls. Single device is the same code with size 1 (every op is then the identity).

Column-parallel (rows split): q/k/v by heads (GQA groups kept whole; KV heads replicated when
the group outnumbers them), gate/up. Row-parallel (columns split, all-reduce after): o, down.
Vocab-parallel: embedding and LM head rows, padded to an even split; logits gathered to rank 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from engine.config import ModelConfig
from engine.errors import UnsupportedModelError
from engine.quant import embed_rows


@dataclass(frozen=True)
class Shard:
    """This rank's slice [start, stop) of a checkpoint tensor along `dim`, as a shard function.

    Called with the full tensor it narrows it; a tensor already read as this slice (the
    sliced safetensors reader), or too small to hold it, passes through unchanged (the loader's
    shape check then names the tensor and both shapes).
    """

    dim: int
    start: int
    stop: int

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.dim() <= self.dim or t.shape[self.dim] in (self.stop - self.start,):
            return t
        if t.shape[self.dim] < self.stop:
            return t
        return t.narrow(self.dim, self.start, self.stop - self.start)


def ColumnParallel(start: int, stop: int) -> Shard:
    """Output rows [start, stop) of a linear layer: no communication after it."""
    return Shard(0, start, stop)


def RowParallel(start: int, stop: int) -> Shard:
    """Input columns [start, stop) of a linear layer: partial sums, all-reduced after it."""
    return Shard(1, start, stop)


def VocabParallel(start: int, stop: int) -> Shard:
    """Vocabulary rows [start, stop) of the embedding / LM head (the last shard may be short)."""
    return Shard(0, start, stop)


_COLUMN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
_FFN_COLUMN = ("mlp.gate_proj", "mlp.up_proj")
_ROW = ("self_attn.o_proj", "mlp.down_proj")
_VOCAB = ("model.embed_tokens.weight", "lm_head.weight")


class TPContext:
    """One rank's place in a tensor-parallel group: shard sizes and the model's collectives.

    `group` is a torch.distributed backend (ProcessGroupGloo / ProcessGroupNCCL) or None for a
    single device. The model calls `embed`, `reduce` (twice per layer) and `gather_logits`.
    """

    def __init__(self, rank: int = 0, size: int = 1, group: Any = None) -> None:
        self.rank, self.size, self.group = rank, size, group

    # -- shard sizes ---------------------------------------------------------------------------

    def check(self, cfg: ModelConfig) -> None:
        """Raise a one-line error when the model cannot be split over `size` ranks."""
        n = self.size
        if n == 1:
            return
        problems = []
        if cfg.n_heads % n:
            problems.append(f"{cfg.n_heads} attention heads")
        if cfg.n_kv_heads % n and n % cfg.n_kv_heads:
            problems.append(f"{cfg.n_kv_heads} key/value heads")
        if cfg.hidden_dim % n:
            problems.append(f"an FFN width of {cfg.hidden_dim}")
        if problems:
            raise UnsupportedModelError(
                f"tensor_parallel_size {n} does not divide {' and '.join(problems)}"
            )

    def local_config(self, cfg: ModelConfig) -> ModelConfig:
        """The config with this rank's head, FFN and (padded) vocabulary counts."""
        if self.size == 1:
            return cfg
        self.check(cfg)
        return replace(
            cfg,
            n_heads=cfg.n_heads // self.size,
            n_kv_heads=max(1, cfg.n_kv_heads // self.size),
            hidden_dim=cfg.hidden_dim // self.size,
            vocab_size=self.vocab_shard(cfg.vocab_size),
        )

    def vocab_shard(self, vocab: int) -> int:
        """Rows of every vocabulary shard: ceil(V / N); the last one is zero-padded."""
        return -(-vocab // self.size)

    def vocab_range(self, vocab: int) -> tuple[int, int]:
        rows = self.vocab_shard(vocab)
        return min(vocab, self.rank * rows), min(vocab, (self.rank + 1) * rows)

    def kv_heads(self, cfg: ModelConfig) -> tuple[int, int]:
        """[first, last) KV heads of this rank; a single replicated head when N > n_kv_heads."""
        if self.size <= cfg.n_kv_heads:
            per = cfg.n_kv_heads // self.size
            return self.rank * per, (self.rank + 1) * per
        head = self.rank * cfg.n_kv_heads // self.size
        return head, head + 1

    def shard_for(self, name: str, cfg: ModelConfig) -> Shard | None:
        """The slice this rank owns of the canonical tensor `name`; None when replicated."""
        if self.size == 1:
            return None
        r, n, D = self.rank, self.size, cfg.head_dim
        if name in _VOCAB:
            return VocabParallel(*self.vocab_range(cfg.vocab_size))
        module = name.removesuffix(".weight").split(".", 3)[-1]
        if module == "self_attn.q_proj":
            per = cfg.n_heads // n * D
            return ColumnParallel(r * per, (r + 1) * per)
        if module in _COLUMN:
            lo, hi = self.kv_heads(cfg)
            return ColumnParallel(lo * D, hi * D)
        if module in _FFN_COLUMN:
            per = cfg.hidden_dim // n
            return ColumnParallel(r * per, (r + 1) * per)
        if module == "self_attn.o_proj":
            per = cfg.n_heads // n * D
            return RowParallel(r * per, (r + 1) * per)
        if module == "mlp.down_proj":
            per = cfg.hidden_dim // n
            return RowParallel(r * per, (r + 1) * per)
        return None

    def assign_shards(self, targets: dict[str, Any], cfg: ModelConfig) -> dict[str, Any]:
        """Give every weight target of the model this rank's shard function; the vocabulary
        targets keep only their real rows (the padding rows stay zero)."""
        if self.size == 1:
            return targets
        out = {}
        for name, target in targets.items():
            shard = self.shard_for(name, cfg)
            if shard is None:
                out[name] = target
            elif name in _VOCAB:
                out[name] = replace(target, rows=(0, shard.stop - shard.start), shard=shard)
            else:
                out[name] = replace(target, shard=shard)
        return out

    # -- collectives ---------------------------------------------------------------------------

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Sum the row-parallel partial outputs of every rank, in place."""
        if self.size > 1:
            self.group.allreduce([x]).wait()
        return x

    def embed(self, table: Any, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Rows of the (vocab-parallel) embedding for ids [T] -> [T, dim]: a float table's,
        or a quantized one's (`engine.quant.QuantWeight`) dequantised to `dtype`."""
        if self.size == 1:
            return embed_rows(table, ids, dtype)
        lo = self.rank * table.shape[0]
        local = ids - lo
        outside = (local < 0) | (local >= table.shape[0])
        x = embed_rows(table, local.clamp(0, table.shape[0] - 1), dtype)
        x[outside] = 0  # another rank owns these ids
        return self.reduce(x)

    def gather_logits(self, logits: torch.Tensor, vocab: int) -> torch.Tensor:
        """Full logits [T, V] on rank 0 from every rank's [T, V/N] shard; other ranks keep
        their own shard (nothing reads it)."""
        if self.size == 1:
            return logits
        logits = logits.contiguous()
        if self.rank != 0:
            self.group.gather([], logits, 0).wait()
            return logits
        parts = [torch.empty_like(logits) for _ in range(self.size)]
        self.group.gather(parts, logits, 0).wait()
        return torch.cat(parts, dim=-1)[..., :vocab]


SINGLE = TPContext()
