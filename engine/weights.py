"""Weight loading: stream checkpoint tensors (safetensors, Mistral-native) into the model.

Every tensor passes through one function, `load_into`, which renames it to the canonical
transformers name, dequantises FP8, applies the native RoPE row permutation, shards it and
checks its shape against the model's destination.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from engine.config import ModelConfig
from engine.errors import WeightLoadError
from engine.gpu_quant import Fp8Weight, fp8_stored
from engine.model import Transformer

_NATIVE_LAYER = {
    "attention.wq": "self_attn.q_proj",
    "attention.wk": "self_attn.k_proj",
    "attention.wv": "self_attn.v_proj",
    "attention.wo": "self_attn.o_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w2": "mlp.down_proj",
    "feed_forward.w3": "mlp.up_proj",
}
_NATIVE_TOP = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_NATIVE_RE = re.compile(r"layers\.(\d+)\.(.+)\.weight")
# Names of FP8 scales that accompany `X.weight`, by checkpoint flavour.
_SCALE_SUFFIXES = ("weight_scale_inv", "weight_scale", "qscale_weight")
_FP8 = tuple(
    getattr(torch, n)
    for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz")
    if hasattr(torch, n)
)


def canonical_name(name: str, native: bool) -> str | None:
    """Transformers name for a checkpoint tensor name (HF, Mistral3 or native), None if foreign."""
    if native:
        if name in _NATIVE_TOP:
            return _NATIVE_TOP[name]
        m = _NATIVE_RE.fullmatch(name)
        if m and m.group(2) in _NATIVE_LAYER:
            return f"model.layers.{m.group(1)}.{_NATIVE_LAYER[m.group(2)]}.weight"
        return None
    for old, new in (
        ("model.language_model.", "model."),
        ("language_model.model.", "model."),
        ("language_model.lm_head.", "lm_head."),
    ):
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def unpermute_native(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Mistral-native wq/wk rows are interleaved (x0, y0, x1, y1, ...) per head; transformers'
    rotate-half RoPE expects (x0, x1, ..., y0, y1, ...)."""
    rows = w.shape[0]  # by a row index, so that an Fp8Weight's row scales move with its rows
    return w[torch.arange(rows).view(n_heads, rows // n_heads // 2, 2).transpose(1, 2).flatten()]


def dequantize_fp8(
    w: torch.Tensor,
    scale: torch.Tensor,
    full: tuple[int, ...] | None = None,
    offset: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """fp32 values of FP8 `w` with a per-tensor, per-row or per-block [rows/b, cols/b] scale.
    `w` is a whole tensor, or the part of one of shape `full` from row/column `offset` on."""
    full = full or tuple(w.shape)
    w32, s = w.to(torch.float32), scale.to(torch.float32)
    if s.numel() == 1:
        return w32 * s.reshape(())
    rows = torch.arange(w.shape[0]) + offset[0]
    if s.dim() == 1 and s.shape[0] == full[0]:
        return w32 * s[rows][:, None]
    cols = torch.arange(w.shape[1]) + offset[1]
    rb, cb = _block(full[0], s.shape[0]), _block(full[1], s.shape[1])
    return w32 * s[rows // rb][:, cols // cb]


def _block(size: int, blocks: int) -> int:
    # FP8 checkpoints use 128-wide blocks (the last one may be partial); else the even split.
    return 128 if -(-size // 128) == blocks else -(-size // blocks)


class TensorPart(Protocol):
    """The slice [start, stop) along `dim` of a tensor (`engine.parallel.shard.Shard`)."""

    dim: int
    start: int
    stop: int


class SafetensorsSource:
    """Lazy access to tensors spread over one or more .safetensors files, whole or in part."""

    def __init__(self, files: list[Path]) -> None:
        from safetensors import safe_open

        self._handles = {}
        self.where: dict[str, Path] = {}
        for f in files:
            try:
                h = safe_open(str(f), framework="pt", device="cpu")
            except Exception as exc:  # safetensors raises its own error types
                raise WeightLoadError(f"cannot open {f}: {exc}") from exc
            self._handles[f] = h
            for key in h.keys():  # noqa: SIM118 (safe_open handles are not dicts)
                self.where[key] = f

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._handles[self.where[key]].get_slice(key).get_shape())

    def dtype(self, key: str) -> str:
        """The stored dtype's safetensors name (F8_E4M3, BF16, ...), read from the header."""
        return self._handles[self.where[key]].get_slice(key).get_dtype()

    def get(self, key: str, part: TensorPart | None = None) -> torch.Tensor:
        """The tensor, or only its `part` (read from disk without the rest)."""
        handle = self._handles[self.where[key]]
        if part is None:
            return handle.get_tensor(key)
        sl = handle.get_slice(key)
        return sl[part.start : part.stop] if part.dim == 0 else sl[:, part.start : part.stop]

    def fp8_scale(self, key: str) -> torch.Tensor:
        base = key.removesuffix(".weight")
        scale_key = next(
            (f"{base}.{s}" for s in _SCALE_SUFFIXES if f"{base}.{s}" in self.where), None
        )
        if scale_key is None:
            raise WeightLoadError(f"FP8 tensor {key} has no scale tensor next to it")
        return self.get(scale_key)


def safetensors_files(root: Path, stem: str) -> list[Path]:
    """The shards of `stem` (model / consolidated) in root, via the index json when present."""
    index = root / f"{stem}.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        return sorted({root / f for f in weight_map.values()})
    single = root / f"{stem}.safetensors"
    if single.is_file():
        return [single]
    return sorted(root.glob(f"{stem}*.safetensors"))


def iter_safetensors(
    files: list[Path],
    cfg: ModelConfig,
    native: bool,
    wanted: Collection[str],
    parts: Mapping[str, TensorPart] | None = None,
    keep_fp8: Collection[str] = (),
) -> Iterator[tuple[str, torch.Tensor | Fp8Weight]]:
    """(canonical name, tensor) for each wanted tensor, read one at a time, FP8 dequantised and
    native RoPE rows unpermuted. With `parts` (tensor parallelism: a rank's slices by canonical
    name), only that part of those tensors is read. FP8 tensors named in `keep_fp8` come as
    stored (`Fp8Weight`) unless their part starts inside a scale block."""
    src = SafetensorsSource(files)
    for key in src.where:
        name = canonical_name(key, native)
        if name is None or name not in wanted:
            continue
        part = (parts or {}).get(name)
        shape = src.shape(key) if part is not None else ()
        if part is not None and (len(shape) <= part.dim or part.stop > shape[part.dim]):
            yield name, src.get(key)  # misshaped: whole, so load_into names both shapes
            continue
        t = src.get(key, part)
        if t.dtype in _FP8:
            at = (0, 0) if part is None else (0, part.start) if part.dim else (part.start, 0)
            scale = src.fp8_scale(key)
            kept = fp8_stored(t, scale, shape or None, at) if name in keep_fp8 else None
            t = kept if kept is not None else dequantize_fp8(t, scale, shape or None, at)
        if native and name.endswith(("q_proj.weight", "k_proj.weight")):
            t = unpermute_native(t, t.shape[0] // cfg.head_dim)  # permutation is within a head
        yield name, t


def load_into(model: Transformer, tensors: Iterator[tuple[str, Any]]) -> None:
    """Copy every tensor into its destination; raise naming the tensor on any mismatch."""
    targets = model.weight_targets()
    seen: set[str] = set()
    for name, tensor in tensors:
        target = targets.get(name)
        if target is None:
            continue
        piece = target.shard(tensor)
        dest = target.dest()
        if tuple(piece.shape) != tuple(dest.shape):
            raise WeightLoadError(
                f"tensor {name} has shape {tuple(piece.shape)}, expected {tuple(dest.shape)}"
            )
        if not isinstance(piece, torch.Tensor) and isinstance(dest, torch.Tensor):
            piece = piece.dequantize()  # stored blocks for a destination kept in floats
        dest.copy_(piece)
        seen.add(name)
    missing = sorted(set(targets) - seen)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        shape = tuple(targets[missing[0]].dest().shape)
        raise WeightLoadError(f"missing tensor {missing[0]} with shape {shape}{more}")
