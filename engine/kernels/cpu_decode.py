"""The fused CPU decode step (`cpu_decode.c`): all decoder layers of a short step in one C call.

A decode step of a small model on CPU was mostly overhead: ~20 torch ops and 5 kernel calls a
layer, each costing microseconds of Python and dispatch, about as much time as the matrix
products themselves (SmolLM2 Q4_1: 11 ms a token, of which 4.3 ms were products). The C step
runs the same layer math (engine/layer.py) with the threads of one OpenMP region.

It applies to a model on one CPU whose activations and KV cache are fp32 and whose matrices are
fp32 rows or GGUF blocks the quantized kernel runs; `FusedLayers.build` returns None otherwise
(and `fused_layers` with VIBE_CPU_KERNELS=0), and the caller takes the torch path. The model is read through
the attributes `Transformer` has (no import of engine.model: kernels sit below it).
"""

from __future__ import annotations

import ctypes
import functools
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from engine.kernels import cpu_quant
from engine.kernels.cpu_linear import build_library, switched_on
from engine.rope import llama4_query_scale

_HERE = Path(__file__).parent
KV_ENV_VAR = "VIBE_KV_FP16"
MAX_ROWS = 16  # decode, speculative verify, or one token of each of up to 16 sequences

_i64, _ptr = ctypes.c_int64, ctypes.c_void_p


PARTS = 3  # row blocks of different storage in one fused matrix (q|k|v)


class _Part(ctypes.Structure):
    _fields_ = [("w", _ptr), ("ld", _i64), ("type", _i64), ("rows", _i64)]


class _Layer(ctypes.Structure):
    _fields_ = [("attn_norm", _ptr), ("ffn_norm", _ptr), ("m", (_Part * PARTS) * 4)]


class _Model(ctypes.Structure):
    _fields_ = [
        ("n_layers", _i64),
        ("dim", _i64),
        ("n_heads", _i64),
        ("n_kv_heads", _i64),
        ("head_dim", _i64),
        ("hidden", _i64),
        ("max_len", _i64),
        ("eps", ctypes.c_double),
        ("cos", _ptr),
        ("sin", _ptr),
        ("layers", ctypes.POINTER(_Layer)),
    ]


@functools.cache
def _library() -> ctypes.CDLL | None:
    sources = [_HERE / "cpu_decode.c", _HERE / "cpu_linear.c", *sorted(_HERE.glob("cpu_quant*.c"))]
    lib = build_library(sources, "cpu_decode")
    if lib is None:
        return None
    fn = lib.vibe_decode_layers
    fn.argtypes = [ctypes.POINTER(_Model), _i64, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr]
    fn.argtypes += [ctypes.c_int, _ptr, _ptr]
    fn.restype = ctypes.c_int
    lib.vibe_kv_half.argtypes, lib.vibe_kv_half.restype = [], ctypes.c_int
    return lib


def _matrix(w: Any, rows: int, cols: int) -> list[_Part] | None:
    """The parts of a [rows, cols] matrix as the C step reads them, else None: an fp32
    tensor, a `QuantWeight` the kernel runs, or a stack of those (`parts`)."""
    parts = getattr(w, "parts", None)
    if parts is not None:
        if len(parts) > PARTS or w.shape != (rows, cols):
            return None
        found = [_matrix(p, p.shape[0], cols) for p in parts]
        if any(f is None for f in found):
            return None
        return [f[0] for f in found]  # type: ignore[index]
    if isinstance(w, torch.Tensor):
        ok = w.dtype == torch.float32 and w.device.type == "cpu" and w.stride(-1) == 1
        if not ok or tuple(w.shape) != (rows, cols):
            return None
        return [_Part(w.data_ptr(), w.stride(0) * 4, 0, rows)]
    data, qtype = getattr(w, "data", None), getattr(w, "kernel_type", None)  # engine.quant's
    if not isinstance(data, torch.Tensor) or not isinstance(qtype, int) or data.stride(-1) != 1:
        return None
    if w.shape != (rows, cols) or not cpu_quant.kernel_runs(qtype, cols):
        return None
    return [_Part(data.data_ptr(), data.stride(0), qtype, rows)]


class FusedLayers:
    """A model's layers as the C step reads them. Holds pointers into the model's tensors:
    build it after loading, and keep the model alive (the cache below is weak)."""

    def __init__(self, model: Any, lib: ctypes.CDLL, layers: list[_Layer]) -> None:
        cfg, lc = model.cfg, model.local
        self._lib, self._layers = lib, (_Layer * len(layers))(*layers)
        self._keep = (model.cos, model.sin)
        self.spec = _Model(
            len(layers), cfg.dim, lc.n_heads, lc.n_kv_heads, cfg.head_dim, lc.hidden_dim,
            model.max_len, cfg.norm_eps, model.cos.data_ptr(), model.sin.data_ptr(),
            self._layers,
        )  # fmt: skip
        self.window = cfg.sliding_window or None
        self.cfg = cfg
        # GGUF blocks kept as stored (some part not fp32 rows)
        self.quantized = any(part.type != 0 for lay in layers for m in lay.m for part in m)
        self.kv_half = bool(lib.vibe_kv_half())  # the kernel reads/writes fp16 caches (F16C)

    @staticmethod
    def build(model: Any) -> FusedLayers | None:
        """The fused layers of `model`, or None when the C step does not apply to it."""
        cfg, lc = model.cfg, model.local
        if (
            model.device.type != "cpu"
            or model.dtype != torch.float32
            or model.tp.size != 1
            or lc.n_heads % lc.n_kv_heads
            or cfg.head_dim % 2
            or not model.cos.is_contiguous()
        ):
            return None
        lib = _library()
        if lib is None:
            return None
        H, Hkv, D, dim, F = lc.n_heads, lc.n_kv_heads, cfg.head_dim, cfg.dim, lc.hidden_dim
        shapes = {"wqkv": ((H + 2 * Hkv) * D, dim), "wo": (dim, H * D), "w13": (2 * F, dim)}
        shapes["w2"] = (dim, F)
        layers = []
        for lay in model.layers:
            mats = [_matrix(getattr(lay, n), *shapes[n]) for n in ("wqkv", "wo", "w13", "w2")]
            if mats[2] and F % cpu_quant.TILE and any(p.type & cpu_quant.PACKED for p in mats[2]):
                return None  # swiglu splits gate and up alike, on whole tiles
            norms = (lay.attn_norm, lay.ffn_norm)
            if any(m is None for m in mats) or any(
                n.dtype != torch.float32 or not n.is_contiguous() for n in norms
            ):
                return None
            table = ((_Part * PARTS) * 4)()
            for i, parts in enumerate(mats):
                for j, part in enumerate(parts or ()):
                    table[i][j] = part
            layers.append(_Layer(norms[0].data_ptr(), norms[1].data_ptr(), table))
        return FusedLayers(model, lib, layers)

    def run(
        self,
        x: torch.Tensor,
        positions: Sequence[int],
        caches: Sequence[Any],
        capture: Sequence[int] = (),
    ) -> dict[int, torch.Tensor] | None:
        """Run every layer on x [M, dim] (fp32, contiguous; updated in place to the last
        layer's output, before the final norm), row m at positions[m] of caches[m] (its keys
        and values are written there). Returns {i: output of layer i [M, dim]} for the layers
        in `capture`; None: not applicable, x untouched."""
        M, n_layers = x.shape[0], self.spec.n_layers
        if not 0 < M <= MAX_ROWS or x.dtype != torch.float32 or not x.is_contiguous():
            return None
        wanted = sorted(set(capture))
        if any(not 0 <= i < n_layers for i in wanted):
            return None
        storage = caches[0].k.dtype  # fp32, or fp16 where the kernel converts (F16C)
        if storage != torch.float32 and (storage != torch.float16 or not self.kv_half):
            return None
        for c in caches:
            if c.k.dtype != storage or c.v.dtype != storage:
                return None
            if not (c.k.is_contiguous() and c.v.is_contiguous()) or c.max_len != self.spec.max_len:
                return None
        if max(positions) >= self.spec.max_len or min(positions) < 0:
            raise ValueError(f"positions up to {max(positions) + 1} exceed the cache")
        w = self.window
        lo = [max(0, p + 1 - w) if w else 0 for p in positions]
        q_scale = llama4_query_scale(self.cfg, torch.tensor(positions))  # Llama-4 scaling
        scale = [1.0] * M if q_scale is None else q_scale.tolist()
        captured, slots = None, None
        if wanted:
            captured = torch.empty((len(wanted), M, x.shape[1]), dtype=torch.float32)
            where = dict(zip(wanted, range(len(wanted)), strict=True))
            slots = (_i64 * n_layers)(*(where.get(i, -1) for i in range(n_layers)))
        rc = self._lib.vibe_decode_layers(
            ctypes.byref(self.spec), M, x.data_ptr(), (_i64 * M)(*positions), (_i64 * M)(*lo),
            (ctypes.c_float * M)(*scale), (_ptr * M)(*(c.k.data_ptr() for c in caches)),
            (_ptr * M)(*(c.v.data_ptr() for c in caches)), int(storage == torch.float16), slots,
            None if captured is None else captured.data_ptr(),
        )  # fmt: skip
        if rc != 0:
            raise MemoryError("the fused CPU decode step could not allocate its buffers")
        return {i: captured[k] for k, i in enumerate(wanted)} if captured is not None else {}


_PLANS: weakref.WeakKeyDictionary[Any, FusedLayers | None] = weakref.WeakKeyDictionary()


def cache_storage(model: Any) -> torch.dtype | None:
    """The dtype `model`'s KV caches store, None for the model's own.

    fp16 where the C step runs decode attention and converts with F16C, for models that keep
    GGUF blocks, as llama.cpp's default cache does; fp32 checkpoints keep fp32 caches and so
    transformers' numbers. VIBE_KV_FP16=1 gives fp16 caches to those too, =0 to none. Prefill,
    on the torch path, reads fp16 caches back as fp32."""
    flag = os.environ.get(KV_ENV_VAR, "auto").strip().lower()
    if flag in ("0", "false", "off"):
        return None
    fused = fused_layers(model)
    if fused is None or not fused.kv_half:
        return None
    return torch.float16 if fused.quantized or flag in ("1", "true", "on") else None


def fused_layers(model: Any) -> FusedLayers | None:
    """`FusedLayers.build(model)`, once per model (weights never move after loading)."""
    if not switched_on():
        return None
    if model not in _PLANS:
        _PLANS[model] = FusedLayers.build(model)
    return _PLANS[model]
