"""Load one tensor-parallel rank's weights, reading only its slices of every safetensors tensor.

Sharded tensors are read with safetensors' `get_slice` (FP8 ones dequantised slice by slice with
the matching part of their scales); replicated ones (norms) are read whole. GGUF checkpoints,
small by nature, are read whole and narrowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from engine.checkpoint import Checkpoint
from engine.config import ModelConfig
from engine.errors import WeightLoadError
from engine.model import Transformer
from engine.parallel.shard import Shard
from engine.weights import (
    _FP8,
    _SCALE_SUFFIXES,
    _block,
    canonical_name,
    load_into,
    unpermute_native,
)


def load_shard(model: Transformer, ckpt: Checkpoint) -> None:
    """Fill `model` (built with its rank's TPContext) with that rank's slices of `ckpt`."""
    targets = model.weight_targets()
    if ckpt.kind == "gguf":
        load_into(model, ckpt.tensors(set(targets)))
    else:
        shards = {name: t.shard for name, t in targets.items() if isinstance(t.shard, Shard)}
        files = list(ckpt.files)
        load_into(model, iter_sliced(files, ckpt.config, ckpt.kind == "native", shards, targets))
    # Zero the padding rows of a short last vocabulary shard (never looked up; logits dropped).
    real = model.tp.vocab_range(model.cfg.vocab_size)
    model.embed[real[1] - real[0] :].zero_()
    model.lm_head[real[1] - real[0] :].zero_()


def iter_sliced(
    files: list[Path],
    cfg: ModelConfig,
    native: bool,
    shards: dict[str, Shard],
    wanted: dict[str, object],
) -> Iterator[tuple[str, torch.Tensor]]:
    """(canonical name, this rank's slice) for each wanted tensor, read one at a time."""
    from safetensors import safe_open

    handles, where = {}, {}
    for f in files:
        try:
            handles[f] = safe_open(str(f), framework="pt", device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise WeightLoadError(f"cannot open {f}: {exc}") from exc
        for key in handles[f].keys():  # noqa: SIM118 (safe_open handles are not dicts)
            where[key] = f
    for key, f in where.items():
        name = canonical_name(key, native)
        if name is None or name not in wanted:
            continue
        shard = shards.get(name)
        sl = handles[f].get_slice(key)
        shape = tuple(sl.get_shape())
        if shard is None:
            t = handles[f].get_tensor(key)
        elif len(shape) <= shard.dim or shard.stop > shape[shard.dim]:
            # Misshaped: hand over the whole tensor so load_into names both shapes.
            t = handles[f].get_tensor(key)
            yield name, t
            continue
        else:
            t = sl[shard.start : shard.stop] if shard.dim == 0 else sl[:, shard.start : shard.stop]
        if t.dtype in _FP8:
            base = key.removesuffix(".weight")
            scale_key = next(
                (f"{base}.{s}" for s in _SCALE_SUFFIXES if f"{base}.{s}" in where), None
            )
            if scale_key is None:
                raise WeightLoadError(f"FP8 tensor {key} has no scale tensor next to it")
            t = dequantize_slice(t, handles[where[scale_key]].get_tensor(scale_key), shape, shard)
        if native and name.endswith(("q_proj.weight", "k_proj.weight")):
            t = unpermute_native(t, t.shape[0] // cfg.head_dim)  # permutation is within a head
        yield name, t


def dequantize_slice(
    w: torch.Tensor, scale: torch.Tensor, full: tuple[int, ...], shard: Shard | None
) -> torch.Tensor:
    """fp32 values of a slice `w` of an FP8 tensor of shape `full`, with the tensor's per-tensor,
    per-row or per-block [rows/b, cols/b] scale."""
    w32, s = w.to(torch.float32), scale.to(torch.float32)
    rows = torch.arange(w.shape[0])
    cols = torch.arange(w.shape[1])
    if shard is not None:
        (rows if shard.dim == 0 else cols).add_(shard.start)
    if s.numel() == 1:
        return w32 * s.reshape(())
    if s.dim() == 1 and s.shape[0] == full[0]:
        return w32 * s[rows][:, None]
    rb, cb = _block(full[0], s.shape[0]), _block(full[1], s.shape[1])
    return w32 * s[rows // rb][:, cols // cb]
