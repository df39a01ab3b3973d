"""Weight-only quantized matrices for the GPU: `Int8Weight`, `Int4Weight`, `Fp8Weight`.

The model holds one wherever it would hold a float matrix (`Transformer(quant={name: kind})`,
kinds below); `engine.kernels.cpu_linear.linear` calls its `.linear(x)`:

- steps of 1 to 16 rows on the Triton backend (CUDA, or `VIBE_KERNELS=triton` under
  TRITON_INTERPRET=1) run `engine.kernels.triton_quant`, which dequantises tiles in the kernel;
- FP8 with one scale per output row, bf16 activations on CUDA sm_89+: `torch._scaled_mm`,
  activations quantised to e4m3 per row on the fly (W8A8, as vLLM runs FP8 checkpoints);
- everything else (prefill, CPU) dequantises 4096 rows at a time and calls `F.linear`.

Layouts (`engine.kernels.reference.dequantize_weight` is the definition):
    int8   data int8 [N, K], scale fp32 [N, 1]: symmetric per output channel, |q| <= 127
    int4   data uint8 [N, K / 2] (value 2j low nibble of byte j, 2j + 1 high), scale and mins
           fp16 [N, K / group]: asymmetric min/max groups along K (gpt-fast's int4, Q4_1's math)
    fp8    data float8_e4m3fn [N, K], scale fp32 [N, ceil(K / group)]: group K (per-tensor and
           per-row checkpoint scales, expanded to rows) or 128 (128x128 block-scaled checkpoints,
           whose block rows are expanded to rows so any row range is a view)

Matrices are filled like tensors: `w[r0:r1]` is a view whose `copy_` takes a float tensor
(quantised on the way in: `--quantize` at load) or a matrix of the same kind (as stored).

Kinds (`Transformer`'s `quant` values): "int8", "int4" (groups of 32), "int4-g64", "int4-g128",
"fp8" (row scales), "fp8-b128" (scale blocks of 128 columns; any width "fp8-bN" parses).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import torch

from engine.config import ModelConfig
from engine.kernels import backend_for, reference

MAX_ROWS = 16  # decode and speculative verify take the kernel; longer steps dequantise
INT4_GROUPS = (32, 64, 128)
FP8_MAX = 448.0
E4M3 = torch.float8_e4m3fn


Quantized = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # data, scale, mins


def check_groups(cols: int, group: int, what: str = "a matrix") -> None:
    """One-line ValueError when `cols` columns (a tensor-parallel shard's width, say) would split
    quantization groups of `group` columns."""
    if group <= 0 or cols % group:
        raise ValueError(
            f"{what} of {cols} columns would split quantization groups of {group} columns; "
            "choose a group size or tensor_parallel_size that divides it"
        )


def _grouped(w: torch.Tensor, group: int) -> torch.Tensor:
    """fp32 [R, G, group] view of w [R, K], zero-padded to whole groups."""
    R, K = w.shape
    pad = -K % group
    w = w.float()
    if pad:
        w = torch.nn.functional.pad(w, (0, pad))
    return w.reshape(R, -1, group)


def _inverse(s: torch.Tensor) -> torch.Tensor:
    return torch.where(s > 0, 1.0 / s.clamp_min(1e-30), torch.zeros_like(s))


@dataclass
class QuantMatrix:
    """A [rows, cols] matrix of quantized `data` with `scale` (and `mins`) per `group` columns."""

    data: torch.Tensor
    scale: torch.Tensor
    mins: torch.Tensor | None
    group: int
    cols: int

    FMT: ClassVar[str] = ""
    qtype: ClassVar[None] = None  # no GGML type: the CPU block kernels (cpu_quant) skip it

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def quantize(cls, w: torch.Tensor, group: int) -> Quantized:
        """(data, scale, mins) of float w [R, K]."""
        raise NotImplementedError

    @classmethod
    def data_cols(cls, cols: int) -> int:
        return cols

    @classmethod
    def empty(
        cls, rows: int, cols: int, group: int | None = None, device: torch.device | str = "cpu"
    ) -> QuantMatrix:
        group = cols if group is None else group
        probe = torch.zeros(1, min(cols, group), device="meta")
        data, scale, mins = cls.quantize(probe, group)
        groups = -(-cols // group)

        def alloc(t: torch.Tensor, width: int) -> torch.Tensor:
            return torch.zeros((rows, width), dtype=t.dtype, device=device)

        return cls(
            alloc(data, cls.data_cols(cols)),
            alloc(scale, groups),
            None if mins is None else alloc(mins, groups),
            group,
            cols,
        )

    @classmethod
    def from_float(cls, w: torch.Tensor, group: int | None = None) -> QuantMatrix:
        """Quantise a float matrix [rows, cols] (on its own device)."""
        group = w.shape[1] if group is None else group
        return cls(*cls.quantize(w, group), group, w.shape[1])

    # -- tensor-like interface (model, loader) ------------------------------------------------

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.data.shape[0], self.cols))

    @property
    def device(self) -> torch.device:
        return self.data.device

    def dim(self) -> int:
        return 2

    def nbytes(self) -> int:
        parts = [self.data, self.scale] + ([self.mins] if self.mins is not None else [])
        return sum(t.numel() * t.element_size() for t in parts)

    def _with(self, pick: slice | torch.Tensor) -> QuantMatrix:
        mins = None if self.mins is None else self.mins[pick]
        return type(self)(self.data[pick], self.scale[pick], mins, self.group, self.cols)

    def __getitem__(self, rows: slice | torch.Tensor) -> QuantMatrix:
        """Rows: a slice gives a view (what `copy_` fills), an index tensor a copy."""
        if not isinstance(rows, slice | torch.Tensor):
            raise TypeError(f"a {type(self).__name__} is indexed by rows only")
        return self._with(rows)

    def copy_(self, other: torch.Tensor | QuantMatrix) -> QuantMatrix:
        """Fill from a float tensor (quantised here) or a matrix of this kind and grouping."""
        if isinstance(other, torch.Tensor):
            other = type(self).from_float(other.to(self.device), self.group)
        elif type(other) is type(self) and other.mins is None and other.group == other.cols:
            # one scale per row (int8, row-scaled FP8) serves any grouping of that row as is
            scale = other.scale.expand(-1, self.scale.shape[1])
            other = type(self)(other.data, scale, None, self.group, self.cols)
        elif type(other) is not type(self) or other.group != self.group:
            other = type(self).from_float(other.dequantize().to(self.device), self.group)
        self.data.copy_(other.data)
        self.scale.copy_(other.scale)
        if self.mins is not None and other.mins is not None:
            self.mins.copy_(other.mins)
        return self

    def contiguous(self) -> QuantMatrix:
        return (
            self._with(slice(None))
            if self.data.is_contiguous()
            else self._with(torch.arange(self.data.shape[0], device=self.device))
        )

    def zero_(self) -> QuantMatrix:
        self.scale.zero_()
        if self.mins is not None:
            self.mins.zero_()
        return self

    def to(self, device: torch.device | str) -> QuantMatrix:
        mins = None if self.mins is None else self.mins.to(device)
        return type(self)(self.data.to(device), self.scale.to(device), mins, self.group, self.cols)

    # -- math ---------------------------------------------------------------------------------

    def _args(self) -> tuple[Any, ...]:
        return self.data, self.scale, self.mins, self.group, self.cols, self.FMT

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """[rows, cols] in `dtype`."""
        return reference.dequantize_weight(*self._args()).to(dtype)

    def rows(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Dequantised rows `ids` [T] -> [T, cols] (an embedding lookup)."""
        return self._with(ids).dequantize(dtype)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., cols] @ self.T in x's dtype."""
        if x.shape[-1] != self.cols:
            raise ValueError(f"linear: x has {x.shape[-1]} columns, the matrix {self.cols}")
        rows = x.numel() // self.cols if self.cols else 0
        if rows <= MAX_ROWS and backend_for(x) == "triton":
            return _triton().quant_linear(x, *self._args())
        return reference.quant_linear(x, *self._args())


@functools.cache
def _triton() -> ModuleType:
    return importlib.import_module("engine.kernels.triton_quant")  # imports triton: lazily


class Int8Weight(QuantMatrix):
    """int8 per output channel (group = cols), gpt-fast's int8: w = q * scale[n]."""

    FMT = "int8"

    @classmethod
    def quantize(cls, w: torch.Tensor, group: int) -> Quantized:
        g = _grouped(w, group)
        scale = g.abs().amax(-1) / 127.0
        q = (g * _inverse(scale)[..., None]).round().clamp(-127, 127).to(torch.int8)
        return q.reshape(w.shape[0], -1)[:, : w.shape[1]], scale, None


class Int4Weight(QuantMatrix):
    """int4 groups along the input dim: w = q * scale[n, g] + mins[n, g], q in 0..15."""

    FMT = "int4"

    @classmethod
    def data_cols(cls, cols: int) -> int:
        return cols // 2

    @classmethod
    def quantize(cls, w: torch.Tensor, group: int) -> Quantized:
        check_groups(w.shape[1], group)
        if group % 2:
            raise ValueError(f"int4 groups must have an even size, got {group}")
        g = _grouped(w, group)
        lo, hi = g.amin(-1), g.amax(-1)
        scale = ((hi - lo) / 15.0).half()
        mins = lo.half()
        inv = _inverse(scale.float())[..., None]
        q = ((g - mins.float()[..., None]) * inv).round().clamp(0, 15).to(torch.uint8)
        q = q.reshape(w.shape[0], -1)
        return q[:, 0::2] | (q[:, 1::2] << 4), scale, mins


class Fp8Weight(QuantMatrix):
    """float8 e4m3 with fp32 scales per row (group = cols) or per 128-column block."""

    FMT = "fp8"

    @classmethod
    def quantize(cls, w: torch.Tensor, group: int) -> Quantized:
        g = _grouped(w, group)
        scale = g.abs().amax(-1) / FP8_MAX
        q = (g * _inverse(scale)[..., None]).clamp(-FP8_MAX, FP8_MAX).to(E4M3)
        return q.reshape(w.shape[0], -1)[:, : w.shape[1]], scale, None

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        rowwise = self.group == self.cols and self.cols % 16 == 0 and self.data.shape[0] % 16 == 0
        if rowwise and x.dtype == torch.bfloat16 and _native_fp8(x.device):
            return scaled_mm_linear(x, self.data, self.scale)
        return super().linear(x)


@functools.cache
def _native_fp8(device: torch.device) -> bool:
    """torch._scaled_mm with row-wise scales: CUDA compute capability 8.9 (Ada) and up."""
    if device.type != "cuda" or not hasattr(torch, "_scaled_mm"):
        return False
    return torch.cuda.get_device_capability(device) >= (8, 9)


def scaled_mm_linear(x: torch.Tensor, data: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [..., K] @ (data * scale).T via `torch._scaled_mm`: x is quantised to e4m3 with one
    scale per row; data e4m3 [N, K], scale fp32 [N, 1]; output in x's dtype (bf16)."""
    K = data.shape[1]
    x2 = x.reshape(-1, K)
    x_scale = x2.abs().amax(-1, keepdim=True).float().clamp_min(1e-12) / FP8_MAX
    xq = (x2.float() / x_scale).clamp(-FP8_MAX, FP8_MAX).to(E4M3)
    out = torch._scaled_mm(
        xq, data.t(), scale_a=x_scale, scale_b=scale.float().reshape(1, -1), out_dtype=x.dtype
    )
    return out.reshape(*x.shape[:-1], data.shape[0])


# -- kinds and plans ---------------------------------------------------------------------------

GPU_KINDS: dict[str, type[QuantMatrix]] = {"int8": Int8Weight, "int4": Int4Weight}
_KIND = re.compile(r"(int8|fp8)|int4(?:-g(32|64|128))?|fp8-b([1-9][0-9]*)")


def parse_kind(kind: str) -> tuple[type[QuantMatrix], int | None]:
    """(class, group) of a kind: "int8", "int4" (= "int4-g32"), "int4-g64", "int4-g128",
    "fp8" (row scales), "fp8-b128" (FP8 scale blocks of 128 columns, or any other width)."""
    m = _KIND.fullmatch(kind)
    if m is None:
        raise ValueError(
            f"unknown quantized kind {kind!r} (int8, int4, int4-g64, int4-g128, fp8, fp8-b128)"
        )
    if m.group(1):
        return (Int8Weight if m.group(1) == "int8" else Fp8Weight), None
    if m.group(3):
        return Fp8Weight, int(m.group(3))
    return Int4Weight, int(m.group(2) or 32)


def empty(kind: str, rows: int, cols: int, device: torch.device | str) -> QuantMatrix:
    """An all-zero matrix of `kind` (`parse_kind`) for the loader to fill."""
    cls, group = parse_kind(kind)
    if cls is Int4Weight:
        check_groups(cols, group or cols)
    return cls.empty(rows, cols, group, device)


def from_float(w: torch.Tensor, bits: int, group: int | None = None) -> QuantMatrix:
    """Quantise float w [rows, cols]: bits 8 -> Int8Weight (per channel), 4 -> Int4Weight
    (groups of `group`, default 32)."""
    if bits == 8:
        return Int8Weight.from_float(w)
    if bits == 4:
        group = group or 32
        if group not in INT4_GROUPS:
            raise ValueError(f"int4 group size must be one of {INT4_GROUPS}, got {group}")
        return Int4Weight.from_float(w, group)
    raise ValueError(f"bits must be 8 or 4, got {bits}")


_LINEAR = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")  # fmt: skip


def quant_plan(cfg: ModelConfig, scheme: str, group: int = 32) -> dict[str, str]:
    """`Transformer`'s `quant` for `--quantize int8|int4` on a GPU: every layer matrix of that
    kind, an untied LM head int8 (as llama.cpp's Q4 files keep the output matrix at 8 bits);
    the embedding stays in floats (it only looks rows up)."""
    if scheme not in GPU_KINDS:
        raise ValueError(f"--quantize must be one of {', '.join(GPU_KINDS)}, got {scheme!r}")
    if scheme == "int4" and group not in INT4_GROUPS:
        raise ValueError(f"int4 group size must be one of {INT4_GROUPS}, got {group}")
    kind = "int8" if scheme == "int8" else f"int4-g{group}"
    plan = {f"model.layers.{i}.{p}.weight": kind for i in range(cfg.n_layers) for p in _LINEAR}
    if not cfg.tie_embeddings:
        plan["lm_head.weight"] = "int8"
    return plan


def check_shards(cfg: ModelConfig, plan: dict[str, str], tp: int) -> None:
    """One-line BadRequestError when a rank's shard of a matrix in `plan` would split
    quantization groups (row-parallel matrices are split along their input columns)."""
    from engine.errors import BadRequestError
    from engine.model import Transformer
    from engine.parallel.shard import TPContext

    try:  # the first rank's shapes, on no device: each rank's are the same
        Transformer(cfg, 2, torch.float32, torch.device("meta"), TPContext(0, tp), plan)
    except ValueError as exc:
        raise BadRequestError(f"--tp {tp}: {exc}") from exc


def fp8_plan(files: Collection[Path], native: bool) -> dict[str, str]:
    """`quant` entries keeping a checkpoint's e4m3 matrices as stored: canonical name ->
    "fp8" (per-tensor / per-row scales) or "fp8-b128" (128x128 blocks). Read from the headers."""
    from engine.weights import SafetensorsSource, _block, canonical_name

    src = SafetensorsSource(list(files))
    plan: dict[str, str] = {}
    for key in src.where:
        name = canonical_name(key, native)
        if name is None or name == "model.embed_tokens.weight":
            continue
        if src.dtype(key) != "F8_E4M3":
            continue
        scale = src.fp8_scale(key)
        blocks = scale.dim() == 2 and scale.shape[1] > 1
        plan[name] = f"fp8-b{_block(src.shape(key)[1], scale.shape[1])}" if blocks else "fp8"
    return plan


def fp8_stored(
    w: torch.Tensor,
    scale: torch.Tensor,
    full: tuple[int, ...] | None = None,
    offset: tuple[int, int] = (0, 0),
) -> Fp8Weight | None:
    """A checkpoint's e4m3 tensor (or its part at `offset` of a tensor of shape `full`) with
    its per-tensor, per-row or 128-block scale, as stored; None when it is not e4m3fn or the
    part's first column is inside a scale block (the loader then dequantises it)."""
    if w.dtype != E4M3 or w.dim() != 2:
        return None
    from engine.weights import _block

    full = full or tuple(w.shape)
    s, cols = scale.float(), w.shape[1]
    rows = torch.arange(w.shape[0]) + offset[0]
    if s.numel() == 1:  # per tensor
        per_row, group = s.reshape(1, 1).expand(w.shape[0], 1).clone(), cols
    elif s.numel() == full[0] and (s.dim() == 1 or s.shape[1] == 1):  # per row
        per_row, group = s.reshape(-1)[rows][:, None].clone(), cols
    elif s.dim() == 2:  # blocks, expanded to rows
        rb, cb = _block(full[0], s.shape[0]), _block(full[1], s.shape[1])
        if offset[1] % cb:
            return None
        c0 = offset[1] // cb
        per_row = s[rows // rb][:, c0 : c0 + -(-cols // cb)].contiguous()
        group = min(cb, cols)  # one block across: a scale per row
    else:
        return None
    return Fp8Weight(w, per_row, None, group, cols)
