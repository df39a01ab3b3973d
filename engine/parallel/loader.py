"""Load one tensor-parallel rank's weights, reading only its slices of every safetensors tensor.

Sharded tensors are read with safetensors' `get_slice` (FP8 ones dequantised slice by slice with
the matching part of their scales); replicated ones (norms) are read whole. GGUF checkpoints are
read tensor by tensor and narrowed: the matrices the model keeps quantized (`QuantWeight`) as
stored blocks (columns split on block boundaries, `check_blocks`), then packed for the kernel.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.checkpoint import Checkpoint
from engine.config import ModelConfig
from engine.errors import BadRequestError
from engine.kernels import cpu_quant
from engine.model import Transformer
from engine.parallel.shard import Shard, TPContext
from engine.quant import pack_matrices, type_name
from engine.weights import iter_safetensors, load_into


def load_shard(model: Transformer, ckpt: Checkpoint) -> None:
    """Fill `model` (built with its rank's TPContext) with that rank's slices of `ckpt`."""
    targets = model.weight_targets()
    if ckpt.kind == "gguf":
        load_into(model, ckpt.tensors(set(targets), model.quantized_names()))
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
    if model.device.type == "cpu":
        pack_matrices(model)  # the kernel's tiled layout, once every row is in


def check_blocks(cfg: ModelConfig, plan: Mapping[str, int | str], tp: int) -> None:
    """One-line BadRequestError when a rank's shard of a matrix kept as GGML blocks (`plan`:
    canonical name -> type) would split a block: row-parallel matrices (o_proj, down_proj) are
    split along their columns, which must fall on block boundaries (32 values, 256 for
    K-quants). Shapes only: call it before any worker starts."""
    for name, qtype in plan.items():
        if qtype not in cpu_quant.KERNEL_TYPES:
            continue
        block = cpu_quant.KERNEL_TYPES[qtype][0]
        for rank in range(tp):
            shard = TPContext(rank, tp).shard_for(name, cfg)
            if shard is None or shard.dim != 1 or not (shard.start % block or shard.stop % block):
                continue
            raise BadRequestError(
                f"--tp {tp} would split the {block}-value {type_name(qtype)} blocks of {name} "
                f"(rank {rank} gets columns {shard.start}:{shard.stop}); choose a --tp that "
                "keeps them whole, or pass --dequantize"
            )
