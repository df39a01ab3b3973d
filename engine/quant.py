"""Quantized weights kept as stored: `QuantWeight`, a [rows, cols] matrix of GGML blocks.

The model holds a `QuantWeight` wherever it would hold an fp32 matrix; `linear(x, w)` runs the
quantized kernel (`engine.kernels.cpu_quant`), the embedding dequantises only the rows it looks
up, and the loader copies raw blocks into (fused) destinations by rows, exactly like tensors.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from engine.kernels import cpu_linear, cpu_quant

if TYPE_CHECKING:
    from engine.checkpoint import Checkpoint

# GGML type ids kept quantized on CPU (the others are dequantised at load with a notice).
KEPT = frozenset(cpu_quant.KERNEL_TYPES)


_FLOAT_TYPES = (0, 1, 30)  # F32, F16, BF16


def type_name(qtype: int) -> str:
    """GGML's name of a type id (Q4_K, IQ2_XS, ...)."""
    try:
        from gguf import GGMLQuantizationType

        return GGMLQuantizationType(qtype).name
    except (ImportError, ValueError):
        return f"type {qtype}"


def quant_plan(ckpt: Checkpoint, device: torch.device, dequantize: bool) -> dict[str, int]:
    """Canonical name -> GGML type of the matrices to keep as stored (a GGUF file's kept types,
    AWQ/GPTQ repacked, `vibe engine quantize` output) on the CPU, on every tensor-parallel
    rank alike. Prints one line when quantized tensors will be dequantised instead."""
    types = ckpt.quant_types()
    quantized = {t for t in types.values() if t not in _FLOAT_TYPES}
    if not quantized or dequantize:
        return {}
    why = "" if device.type == "cpu" else " (quantized weights run on the CPU only)"
    if why:
        label = ckpt.quant_label() or _names(quantized)
        print(f"notice: dequantising {label} weights{why}", file=sys.stderr)
        return {}
    other = quantized - KEPT
    if other:
        print(f"notice: dequantising {_names(other)} weights (no kernel yet)", file=sys.stderr)
    return {n: t for n, t in types.items() if t in KEPT}


def _names(types: set[int]) -> str:
    return ", ".join(sorted(type_name(t) for t in types))


@dataclass
class QuantWeight:
    """`data` uint8 [rows, row_bytes] of GGML blocks of type `qtype` holding [rows, cols].
    `packed`: the blocks were repacked in place into tiles of `cpu_quant.TILE` rows (`pack`):
    what the kernel reads fastest, and only it (slices then fall on tile boundaries)."""

    data: torch.Tensor
    qtype: int
    cols: int
    packed: bool = False

    @classmethod
    def empty(cls, rows: int, cols: int, qtype: int) -> QuantWeight:
        block, size = cpu_quant.KERNEL_TYPES[qtype]
        if cols % block:
            raise ValueError(f"{cols} columns are not a whole number of {block}-value blocks")
        return cls(torch.empty((rows, cols // block * size), dtype=torch.uint8), qtype, cols)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.data.shape[0], self.cols))

    @property
    def device(self) -> torch.device:
        return self.data.device

    def dim(self) -> int:
        return 2

    def nbytes(self) -> int:
        return self.data.numel()

    @property
    def kernel_type(self) -> int:
        """The type code the C kernel reads: `qtype`, | `cpu_quant.PACKED` when packed."""
        return self.qtype | cpu_quant.PACKED if self.packed else self.qtype

    def __getitem__(self, rows: slice | torch.Tensor) -> QuantWeight:
        """Rows: a slice (a view; on tile boundaries when packed), or an index tensor (a copy
        in the unpacked layout: a reduced-vocabulary head)."""
        if isinstance(rows, torch.Tensor):
            if self.packed:  # ids as torch reads them (a mask, negative ids), then unpacked
                ids = rows.nonzero().reshape(-1) if rows.dtype == torch.bool else rows.reshape(-1)
                ids = torch.where(ids < 0, ids + self.data.shape[0], ids)
                data = cpu_quant.unpack_rows(self.data, self.kernel_type, self.cols, ids)
                return QuantWeight(data, self.qtype, self.cols)
            return QuantWeight(self.data[rows], self.qtype, self.cols)
        if not isinstance(rows, slice):
            raise TypeError("a QuantWeight is indexed by rows only")
        start, stop, step = rows.indices(self.data.shape[0])
        tile = cpu_quant.TILE
        if self.packed and (step != 1 or start % tile or stop % tile):
            raise ValueError(f"a packed matrix is sliced on {tile}-row boundaries")
        return QuantWeight(self.data[rows], self.qtype, self.cols, self.packed)

    def contiguous(self) -> QuantWeight:
        return QuantWeight(self.data.contiguous(), self.qtype, self.cols, self.packed)

    def copy_(self, other: QuantWeight) -> QuantWeight:
        if not isinstance(other, QuantWeight) or other.kernel_type != self.kernel_type:
            raise TypeError("a QuantWeight receives blocks of its own type (and layout) only")
        self.data.copy_(other.data)
        return self

    def pack(self) -> None:
        """Repack into the kernel's tiles when that applies (else leave as is): in place, or
        into a new tensor for types whose tiles are larger (Q4_K)."""
        rows, contiguous = self.data.shape[0], self.data.is_contiguous()
        if not self.packed and contiguous and cpu_quant.packable(self.qtype, rows, self.cols):
            self.data = cpu_quant.pack(self.data, self.qtype, self.cols)
            self.packed = True

    def dequantize(self) -> torch.Tensor:
        """fp32 [rows, cols]."""
        return cpu_quant.dequantize(self.data, self.kernel_type, self.cols)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., cols] @ self.T, in x's dtype."""
        return cpu_quant.qlinear(x, self.data, self.kernel_type, self.cols)

    def rows(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Dequantised rows `ids` [...] -> [..., cols] (embedding lookup)."""
        flat = self[ids.reshape(-1)].dequantize()
        return flat.to(dtype).view(*ids.shape, self.cols)

    # -- tensor-parallel shards (engine.parallel.shard.Shard), on the stored (unpacked) layout --

    def narrow(self, dim: int, start: int, length: int) -> QuantWeight:
        """Rows [start, start + length) (dim 0, a view), or those columns (dim 1, a copy of whole
        blocks; a range that would split a block raises ValueError)."""
        if dim == 0:
            return self[start : start + length]
        if self.packed:
            raise ValueError("a packed matrix is not split by columns")
        block, size = cpu_quant.KERNEL_TYPES[self.qtype]
        if start % block or length % block:
            raise ValueError(
                f"columns {start}:{start + length} would split {block}-value "
                f"{type_name(self.qtype)} blocks"
            )
        lo, hi = start // block * size, (start + length) // block * size
        return QuantWeight(self.data[:, lo:hi].contiguous(), self.qtype, length)

    def zero_(self) -> QuantWeight:
        """All-zero blocks: every kept type then holds zeros (scales and mins of 0)."""
        self.data.zero_()
        return self


@dataclass
class StackedWeight:
    """A fused matrix (q|k|v, gate|up) whose row blocks are stored differently: Q4_K_M files
    keep attn_v in Q6_K next to a Q4_K attn_q/attn_k. Each part runs its own kernel; the
    loader fills a part through the row slice that is exactly that part."""

    parts: list[torch.Tensor | QuantWeight]

    @property
    def shape(self) -> torch.Size:
        return torch.Size((sum(p.shape[0] for p in self.parts), self.parts[0].shape[1]))

    @property
    def device(self) -> torch.device:
        return self.parts[0].device

    def dim(self) -> int:
        return 2

    def nbytes(self) -> int:
        return sum(weight_nbytes(p) for p in self.parts)

    def __getitem__(self, rows: slice) -> torch.Tensor | QuantWeight:
        start = 0
        for part in self.parts:
            if (rows.start, rows.stop) == (start, start + part.shape[0]):
                return part
            start += part.shape[0]
        raise TypeError(f"rows {rows.start}:{rows.stop} are not one part of a stacked matrix")

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([cpu_linear.linear(x, p) for p in self.parts], dim=-1)

    def dequantize(self) -> torch.Tensor:
        return torch.cat(
            [p.dequantize() if isinstance(p, QuantWeight) else p.float() for p in self.parts]
        )


def pack_matrices(model: Any) -> None:
    """Repack every quantized matrix of a loaded model (`engine.model.Transformer`: embedding,
    layers, LM head; stacked parts too) into the kernel's tiles, in place and one at a time,
    building the kernel now rather than inside the first step (or collective). Call once all
    weights are in: the loader copies rows in the stored layout."""
    seen: set[int] = set()
    for w in [model.embed, model.lm_head] + [m for lay in model.layers for m in vars(lay).values()]:
        for part in getattr(w, "parts", [w]):
            if isinstance(part, QuantWeight) and id(part) not in seen:
                if not seen:
                    cpu_quant.enabled()
                seen.add(id(part))
                part.pack()


def embed_rows(
    embed: torch.Tensor | QuantWeight, ids: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Embedding rows `ids` [...] -> [..., dim] of a plain or quantized table."""
    if isinstance(embed, QuantWeight):
        return embed.rows(ids, dtype)
    return embed[ids]


def weight_nbytes(w: Any) -> int:
    """Bytes a matrix occupies (read once per decode step): a tensor's, or any quantized
    matrix's `nbytes()` (GGUF blocks, stacked parts, the GPU kinds of engine.gpu_quant)."""
    if isinstance(w, torch.Tensor):
        return w.numel() * w.element_size()
    return w.nbytes()
