"""A minimal GGUF reader: metadata, config, and tensors (dequantised, or as stored blocks) for
llama-architecture files.

gguf-py's reader materialises every metadata item as numpy memmaps (tens of seconds for a
49k-token vocabulary); this parser reads the header with `struct` and dequantises with gguf-py.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.config import ModelConfig
from engine.errors import UnsupportedModelError, WeightLoadError
from engine.quant import QuantWeight

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
_LAYER = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}  # fmt: skip
_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy order (rows first)
    qtype: int
    offset: int  # absolute file offset


class GGUFFile:
    """Header of a GGUF file; tensors are read lazily from a memory map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            self._buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._pos = 0
        try:
            self._parse()
        except (struct.error, UnicodeDecodeError, KeyError) as exc:
            raise WeightLoadError(f"{path} is not a valid GGUF file: {exc}") from exc

    def _read(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self._buf, self._pos)[0]
        self._pos += struct.calcsize(fmt)
        return value

    def _string(self) -> str:
        n = self._read("<Q")
        text = self._buf[self._pos : self._pos + n].decode("utf-8")
        self._pos += n
        return text

    def _value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self._string()
        if vtype == _ARRAY:
            etype, count = self._read("<I"), self._read("<Q")
            return [self._value(etype) for _ in range(count)]
        return self._read(_SCALARS[vtype])

    def _parse(self) -> None:
        if self._buf[:4] != b"GGUF":
            raise WeightLoadError(f"{self.path} is not a GGUF file")
        self._pos = 4
        version, n_tensors, n_kv = self._read("<I"), self._read("<Q"), self._read("<Q")
        if version < 2:
            raise WeightLoadError(f"{self.path}: GGUF version {version} is not supported")
        self.meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = self._string()
            self.meta[key] = self._value(self._read("<I"))
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            dims = [self._read("<Q") for _ in range(self._read("<I"))]
            infos.append((name, tuple(reversed(dims)), self._read("<I"), self._read("<Q")))
        align = int(self.meta.get("general.alignment", 32))
        start = -(-self._pos // align) * align
        self.tensors = {n: TensorInfo(n, s, q, start + o) for n, s, q, o in infos}

    def tensor(self, info: TensorInfo) -> torch.Tensor:
        """Dequantised fp32 tensor."""
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
        from gguf.quants import dequantize

        qtype = GGMLQuantizationType(info.qtype)
        block, type_size = GGML_QUANT_SIZES[qtype]
        n = int(np.prod(info.shape))
        nbytes = n // block * type_size
        raw = np.frombuffer(self._buf, dtype=np.uint8, count=nbytes, offset=info.offset)
        rows = raw.reshape(-1, info.shape[-1] // block * type_size)
        values = dequantize(rows, qtype).reshape(info.shape)
        return torch.from_numpy(np.array(values, dtype=np.float32))  # a writable copy

    def raw(self, info: TensorInfo) -> QuantWeight:
        """The stored blocks of a 2-D tensor of a kernel type, copied out of the file."""
        from engine.kernels.cpu_quant import KERNEL_TYPES

        block, size = KERNEL_TYPES[info.qtype]
        rows, cols = info.shape
        raw = np.frombuffer(self._buf, np.uint8, rows * (cols // block) * size, info.offset)
        data = torch.from_numpy(raw.reshape(rows, cols // block * size).copy())
        return QuantWeight(data, info.qtype, cols)

    def qtypes(self) -> dict[str, int]:
        """Transformers name -> GGML type of each 2-D tensor the model uses."""
        out = {}
        for name, info in self.tensors.items():
            hf = gguf_to_hf_name(name)
            if hf is not None and len(info.shape) == 2:
                out[hf] = info.qtype
        return out

    def config(self) -> ModelConfig:
        """ModelConfig from the llama-architecture metadata."""
        arch = self.meta.get("general.architecture")
        if arch != "llama":
            raise UnsupportedModelError(f"GGUF architecture {arch!r} is not supported (llama)")
        m = self.meta

        def get(key: str, default: Any = None) -> Any:
            value = m.get(f"llama.{key}", default)
            if value is None:
                raise UnsupportedModelError(f"{self.path.name}: GGUF metadata lacks llama.{key}")
            return value

        scaling = m.get("llama.rope.scaling.type", "none")
        if scaling not in ("none", None):
            raise UnsupportedModelError(f"GGUF rope scaling {scaling!r} is not supported")
        heads, dim = int(get("attention.head_count")), int(get("embedding_length"))
        vocab = m.get("llama.vocab_size") or len(m.get("tokenizer.ggml.tokens", []))
        eos = m.get("tokenizer.ggml.eos_token_id")
        return ModelConfig(
            model_type="llama",
            vocab_size=int(vocab),
            dim=dim,
            n_layers=int(get("block_count")),
            n_heads=heads,
            n_kv_heads=int(get("attention.head_count_kv", heads)),
            head_dim=int(get("attention.key_length", dim // heads)),
            hidden_dim=int(get("feed_forward_length")),
            norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
            rope_theta=float(get("rope.freq_base", 10000.0)),
            max_position_embeddings=int(get("context_length", 4096)),
            tie_embeddings="output.weight" not in self.tensors,
            bos_token_id=m.get("tokenizer.ggml.bos_token_id"),
            eos_token_ids=(int(eos),) if eos is not None else (),
        )

    def hf_tensors(
        self, cfg: ModelConfig, wanted: set[str], keep: Collection[str] = ()
    ) -> Iterator[tuple[str, torch.Tensor | QuantWeight]]:
        """(transformers name, fp32 tensor, or the stored blocks for names in `keep`); q/k rows
        un-permuted from llama.cpp's layout (whole rows, so blocks move unchanged)."""
        from engine.weights import unpermute_native

        for name, info in self.tensors.items():
            hf = gguf_to_hf_name(name)
            if hf is None or hf not in wanted:
                continue
            t: torch.Tensor | QuantWeight = self.raw(info) if hf in keep else self.tensor(info)
            heads = (
                cfg.n_heads if hf.endswith("q_proj.weight")
                else cfg.n_kv_heads if hf.endswith("k_proj.weight") else 0
            )  # fmt: skip
            if heads and isinstance(t, QuantWeight):
                t = QuantWeight(unpermute_native(t.data, heads), t.qtype, t.cols)
            elif heads:
                t = unpermute_native(t, heads)
            yield hf, t


def gguf_to_hf_name(name: str) -> str | None:
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`; None if unknown."""
    stem, _, suffix = name.rpartition(".")
    if stem in _TOP:
        return f"{_TOP[stem]}.{suffix}"
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _LAYER:
        return f"model.layers.{parts[1]}.{_LAYER[parts[2]]}.{suffix}"
    return None
