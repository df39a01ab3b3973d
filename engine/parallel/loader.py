"""Load one tensor-parallel rank's weights, reading only its slices of every safetensors tensor.

Sharded tensors are read with safetensors' `get_slice` (FP8 ones dequantised slice by slice with
the matching part of their scales); replicated ones (norms) are read whole. GGUF checkpoints,
small by nature, are read whole and narrowed.
"""

from __future__ import annotations

from engine.checkpoint import Checkpoint
from engine.model import Transformer
from engine.parallel.shard import Shard
from engine.weights import iter_safetensors, load_into


def load_shard(model: Transformer, ckpt: Checkpoint) -> None:
    """Fill `model` (built with its rank's TPContext) with that rank's slices of `ckpt`."""
    targets = model.weight_targets()
    if ckpt.kind == "gguf":
        load_into(model, ckpt.tensors(set(targets)))
    else:
        shards = {name: t.shard for name, t in targets.items() if isinstance(t.shard, Shard)}
        tensors = iter_safetensors(
            list(ckpt.files), ckpt.config, ckpt.kind == "native", set(targets), shards
        )
        load_into(model, tensors)
    # Zero the padding rows of a short last vocabulary shard (never looked up; logits dropped).
    real = model.tp.vocab_range(model.cfg.vocab_size)
    model.embed[real[1] - real[0] :].zero_()
    model.lm_head[real[1] - real[0] :].zero_()
