"""Shared by the engine benchmarks: the transformers twin of an engine model, random-weight
models and checkpoints, and the memory-bandwidth probe. Scripts run from the repository root
(`python -m scripts.bench_engine ...`); the engine is importable as an installed package."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from engine.config import ModelConfig
from engine.model import Transformer


def hf_config(c: ModelConfig, dtype: torch.dtype = torch.float32) -> Any:
    """A transformers config of the same shape (Llama for SmolLM2/Llama, else Mistral)."""
    from transformers import LlamaConfig, MistralConfig

    common = dict(
        vocab_size=c.vocab_size, hidden_size=c.dim, intermediate_size=c.hidden_dim,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
        num_key_value_heads=c.n_kv_heads, head_dim=c.head_dim, rms_norm_eps=c.norm_eps,
        rope_theta=c.rope_theta, max_position_embeddings=c.max_position_embeddings,
        tie_word_embeddings=c.tie_embeddings, torch_dtype=dtype,
    )  # fmt: skip
    if c.model_type == "llama":
        return LlamaConfig(**common)
    return MistralConfig(**common, sliding_window=c.sliding_window)


def hf_twin(
    c: ModelConfig,
    tensors: Iterable[tuple[str, torch.Tensor]] | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> torch.nn.Module:
    """transformers' CausalLM of the engine model's shape holding `tensors` (canonical names,
    the keys of `Transformer.weight_targets()`, e.g. `Checkpoint.tensors(...)`), else N(0, 0.02)."""
    from transformers import AutoModelForCausalLM

    with torch.device(device):
        model = AutoModelForCausalLM.from_config(hf_config(c, dtype), torch_dtype=dtype).eval()
    with torch.no_grad():
        if tensors is None:
            for name, p in model.named_parameters():
                p.fill_(1.0) if name.endswith("norm.weight") else p.normal_(0.0, 0.02)
        else:
            model.load_state_dict(dict(tensors), strict=False)
    model.tie_weights()
    return model


def random_model(
    cfg: ModelConfig, max_len: int, dtype: torch.dtype = torch.bfloat16, device: str = "cuda"
) -> Transformer:
    """An engine model with random weights (norms 1, matrices N(0, 0.02))."""
    model = Transformer(cfg, max_len, dtype, torch.device(device))
    for name, target in model.weight_targets().items():
        dest = target.dest()
        dest.fill_(1.0) if name.endswith("norm.weight") else dest.normal_(0.0, 0.02)
    return model


def random_checkpoint(root: Path, cfg: ModelConfig, seed: int = 0, head_gain: float = 4.0) -> Path:
    """A random-weight HF checkpoint (config.json + model.safetensors) of shape `cfg`, written
    under the engine's own weight names; the LM head is scaled so greedy picks are stable."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    model = Transformer(cfg, 8, torch.float32, torch.device("meta"))
    tensors = {}
    for name, target in model.weight_targets().items():
        shape = tuple(target.dest().shape)
        if name.endswith("norm.weight"):
            tensors[name] = torch.ones(shape)
        else:
            w = torch.randn(shape, generator=gen) / shape[-1] ** 0.5
            tensors[name] = w * head_gain if name == "lm_head.weight" else w
    save_file(tensors, str(root / "model.safetensors"))
    hf = hf_config(cfg).to_dict()
    (root / "config.json").write_text(json.dumps(hf, default=str))
    return root


def read_bandwidth(device: str = "cpu", gib: float = 0.5, repeats: int = 5) -> float:
    """Best observed memory bandwidth in bytes/s: summing a large fp32 tensor on CPU, a
    device-to-device copy (read + write) on CUDA."""
    n = int(gib * 2**30) // 4
    if device == "cpu":
        x = torch.ones(n)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            x.sum()
            best = min(best, time.perf_counter() - t)
        return n * 4 / best
    src = torch.empty(n, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 2 * n * 4 * repeats / (time.perf_counter() - t)


def gguf_f32_copy(src: Path, dst: Path) -> Path:
    """`src` (a GGUF file) with every tensor expanded to F32, metadata kept: the fp32 row of
    `bench_engine --vs-llamacpp --f32` runs both engines on it. Written once."""
    if dst.exists():
        return dst
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    tmp = dst.with_suffix(".part")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        writer.add_tensor(t.name, np.ascontiguousarray(values, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dst)
    return dst
