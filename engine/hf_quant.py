"""Hugging Face checkpoints stored quantized (AWQ, GPTQ), repacked into GGML blocks on CPU.

Packings, read from the reference implementations:
- AWQ GEMM (AutoAWQ `awq/modules/linear/gemm.py` `WQLinear_GEMM.from_linear`,
  `awq/utils/packing_utils.py` `dequantize_gemm`; vLLM `quantization/awq.py`): `qweight` int32
  [in, out / 8] packs 8 output columns per word, nibble i holding column `AWQ_ORDER[i]` of the 8
  (so column j sits in nibble `AWQ_REVERSE_ORDER[j]`); `qzeros` int32 [in / group, out / 8]
  the same way; `scales` fp16 [in / group, out]; w[out, in] = (q - z) * s.
- GPTQ (AutoGPTQ `nn_modules/qlinear/qlinear_cuda_old.py` `QuantLinear.pack`, GPTQModel
  `nn_modules/qlinear/__init__.py`; vLLM `quantization/gptq.py`): `qweight` int32 [in / 8, out]
  packs 8 input rows per word, low nibble first; `qzeros` int32 [groups, out / 8] packs output
  columns low nibble first; `scales` fp16 [groups, out]; `g_idx` int32 [in] is each input
  row's group. Format v1 (`checkpoint_format` "gptq", AutoGPTQ) stores zero - 1 and reads back
  `(stored & 15) + 1`; v2 ("gptq_v2", GPTQModel) stores the zero itself.

On CPU a group of 32k consecutive input columns sharing one (s, z) becomes k blocks of 32:
Q4_0 when every zero is 8 (symmetric GPTQ: d = s, w = d (q - 8), exact), else Q4_1 with d = s
and m = -z s rounded to fp16 (the only change: each weight moves by at most half an fp16 ulp
of z s, i.e. under 0.8% of the group's step s). Groups that do not map onto 32-blocks (act-order
`g_idx` that changes inside a block, groups not a multiple of 32, bits other than 4) are
dequantised to floats with a one-line notice; so is everything off CPU (`quant_plan`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.config import ModelConfig
from engine.errors import UnsupportedModelError, WeightLoadError
from engine.quant import QuantWeight
from engine.quantize import Q4_0, Q4_1, SAVED_JSON, SavedFormat, pack_q4
from engine.weights import SafetensorsSource, canonical_name, iter_safetensors

AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7)


@dataclass(frozen=True)
class Groups:
    """A layer's zeros [groups, out] and g_idx [in] (each input column's group)."""

    zeros: torch.Tensor
    g_idx: torch.Tensor

    def block_groups(self) -> torch.Tensor | None:
        """The group of each 32-column block, None when a block spans two groups."""
        if self.g_idx.numel() % 32:
            return None
        g = self.g_idx.reshape(-1, 32)
        return g[:, 0] if bool((g == g[:, :1]).all()) else None

    def contiguous(self, group: int) -> bool:
        """Each input column's group is its index // group (no act-order permutation)."""
        cols = self.g_idx.numel()
        return cols % group == 0 and bool((self.g_idx == torch.arange(cols) // group).all())

    def qtype(self) -> int | None:
        """Q4_0 (every zero 8) / Q4_1 when the groups map onto 32-value blocks, else None."""
        if self.block_groups() is None:
            return None
        return Q4_0 if bool((self.zeros == 8).all()) else Q4_1


def blocks(q: torch.Tensor, scales: torch.Tensor, groups: Groups) -> QuantWeight:
    """4-bit q [out, in] with fp16 scales [groups, out] as Q4_0 / Q4_1 blocks."""
    per_block, qtype = groups.block_groups(), groups.qtype()
    assert per_block is not None and qtype is not None
    s = scales[per_block].T  # fp16 [out, blocks]
    if qtype == Q4_0:
        return QuantWeight(pack_q4(q, s), qtype, q.shape[1])
    m = -(groups.zeros[per_block].T.float() * s.float())
    return QuantWeight(pack_q4(q, s, m), qtype, q.shape[1])


def int4_matrix(q: torch.Tensor, scales: torch.Tensor, groups: Groups, group: int) -> Any:
    """4-bit q [out, in] with fp16 scales [groups, out] as the GPU's `Int4Weight` (groups of
    `group` input columns: w = q s + m with m = -z s in fp16, the Q4_1 mapping)."""
    from engine.gpu_quant import Int4Weight

    q8 = q.to(torch.uint8)
    m = -(groups.zeros.T.float() * scales.T.float())
    return Int4Weight(
        q8[:, 0::2] | (q8[:, 1::2] << 4), scales.T.contiguous(), m.half(), group, q.shape[1]
    )


def dequantize(q: torch.Tensor, scales: torch.Tensor, groups: Groups) -> torch.Tensor:
    """fp32 w [out, in] = (q - z) * s of each input column's group."""
    g = groups.g_idx
    return (q.float() - groups.zeros[g].T.float()) * scales[g].T.float()


def _unpack(words: torch.Tensor, bits: int, dim: int) -> torch.Tensor:
    """int32 words -> their 32 / bits fields, low first, laid out consecutively along `dim`."""
    shifts = torch.arange(0, 32, bits, dtype=torch.int32)
    w = words.to(torch.int32)
    if dim == 1:  # [r, c] -> [r, c * n]
        out = (w[:, :, None] >> shifts) & (2**bits - 1)
        return out.reshape(w.shape[0], -1)
    out = (w[:, None, :] >> shifts[:, None]) & (2**bits - 1)  # [r, n, c] -> [r * n, c]
    return out.reshape(-1, w.shape[1])


@dataclass(frozen=True)
class PackedFormat:
    """An AWQ (GEMM) or GPTQ checkpoint's quantization_config."""

    method: str  # "awq" | "gptq"
    bits: int
    group_size: int
    zero_offset: int  # GPTQ v1 stores zero - 1

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.bits}-bit"

    def groups(self, src: SafetensorsSource, base: str) -> Groups:
        """`base`'s zeros (unpacked, as the reference reads them back) and g_idx."""
        zeros = _unpack(src.get(f"{base}.qzeros"), self.bits, 1)
        if self.method == "awq":
            zeros = zeros[:, _awq_order(zeros.shape[1])]
            cols = src.shape(f"{base}.qweight")[0]
        else:
            zeros = zeros + self.zero_offset
            cols = src.shape(f"{base}.qweight")[0] * 32 // self.bits
        out = src.shape(f"{base}.scales")[1]
        g_key = f"{base}.g_idx"
        if self.method == "gptq" and g_key in src.where:
            g_idx = src.get(g_key).long().reshape(-1)
        else:
            g_idx = torch.arange(cols) // (self.group_size if self.group_size > 0 else cols)
        return Groups(zeros[:, :out], g_idx)

    def weights(self, src: SafetensorsSource, base: str) -> torch.Tensor:
        """`base`'s integers q [out, in]."""
        qweight = src.get(f"{base}.qweight")
        if self.method == "awq":  # [in, out / 8] -> [in, out]
            return _unpack(qweight, self.bits, 1)[:, _awq_order(qweight.shape[1] * 8)].T
        return _unpack(qweight, self.bits, 0).T  # [in / 8, out] -> [in, out]

    def _bases(self, src: SafetensorsSource, native: bool) -> dict[str, str]:
        """Canonical weight name -> checkpoint base name of each packed layer."""
        out = {}
        for key in src.where:
            if key.endswith(".qweight"):
                base = key.removesuffix(".qweight")
                name = canonical_name(base + ".weight", native)
                if name is not None:
                    out[name] = base
        return out

    def types(self, files: list[Path]) -> dict[str, int]:
        """Canonical name -> Q4_0/Q4_1 of the layers that map onto 32-value blocks (reads only
        zeros and g_idx)."""
        if self.bits != 4:
            return {}
        src = SafetensorsSource(files)
        types = {}
        for name, base in self._bases(src, False).items():
            qtype = self.groups(src, base).qtype()
            if qtype is not None:
                types[name] = qtype
        return types

    def int4_kinds(self, files: list[Path]) -> dict[str, str]:
        """Canonical name -> the `engine.gpu_quant` kind ("int4-g128", ...) of the layers that
        load as stored on a GPU: 4-bit, a group size the kernel takes, no act-order."""
        from engine.gpu_quant import INT4_GROUPS

        if self.bits != 4 or self.group_size not in INT4_GROUPS:
            return {}
        src = SafetensorsSource(files)
        return {
            name: f"int4-g{self.group_size}"
            for name, base in self._bases(src, False).items()
            if self.groups(src, base).contiguous(self.group_size)
        }

    def tensors(
        self,
        files: list[Path],
        cfg: ModelConfig,
        native: bool,
        wanted: Collection[str],
        keep: Collection[str],
        keep_int4: Collection[str] = (),
    ) -> Iterator[tuple[str, Any]]:
        """The plain tensors as stored, then each packed layer as blocks (names in `keep`), as
        the GPU's `Int4Weight` (names in `keep_int4`) or dequantised fp32; one notice when some
        layers are dequantised while others are kept."""
        src = SafetensorsSource(files)
        bases = self._bases(src, native)
        yield from iter_safetensors(files, cfg, native, set(wanted) - set(bases))
        expanded, mappable = 0, False
        for name, base in bases.items():
            if name not in wanted:
                continue
            q, scales = self.weights(src, base), src.get(f"{base}.scales").to(torch.float16)
            groups = self.groups(src, base)
            mappable = mappable or (self.bits == 4 and groups.qtype() is not None)
            if name in keep:
                yield name, blocks(q, scales, groups)
            elif name in keep_int4:
                yield name, int4_matrix(q, scales, groups, self.group_size)
            else:
                expanded += 1
                yield name, dequantize(q, scales, groups)
        if expanded and (keep or keep_int4 or not mappable):  # else quant_plan told why
            why = "bits != 4" if self.bits != 4 else "their groups do not map onto 32-value blocks"
            print(f"notice: dequantised {expanded} {self.label} matrices ({why})", file=sys.stderr)


def _awq_order(cols: int) -> list[int]:
    """Column j of each 8 sits in nibble AWQ_REVERSE_ORDER[j]: the gather order of unpacked
    nibbles that restores column order (AutoAWQ `reverse_awq_order`)."""
    order = torch.arange(cols).reshape(-1, 8)[:, list(AWQ_REVERSE_ORDER)]
    return order.reshape(-1).tolist()


def packed_format(config: dict[str, Any]) -> PackedFormat | None:
    """The AWQ/GPTQ format of a config.json dict; None for other (or no) quantization."""
    qc = config.get("quantization_config") or {}
    method = str(qc.get("quant_method", "")).lower()
    if method not in ("awq", "gptq"):
        return None
    bits, group = int(qc.get("bits", 4)), int(qc.get("group_size", 128))
    if method == "awq":
        version = str(qc.get("version", "gemm")).lower()
        if version != "gemm" or bits != 4 or not qc.get("zero_point", True):
            raise UnsupportedModelError(
                f"AWQ {version} {bits}-bit (zero_point={qc.get('zero_point', True)}) is not "
                "supported (GEMM packing, 4-bit, zero_point)"
            )
        return PackedFormat("awq", 4, group, 0)
    if bits not in (2, 4, 8):
        raise UnsupportedModelError(f"GPTQ {bits}-bit is not supported (2, 4 or 8 bits)")
    fmt = str(qc.get("checkpoint_format", "gptq")).lower()
    if fmt not in ("gptq", "gptq_v2"):
        raise UnsupportedModelError(f"GPTQ checkpoint_format {fmt!r} is not supported")
    return PackedFormat("gptq", bits, group, 1 if fmt == "gptq" else 0)


def stored_format(root: Path, kind: str) -> PackedFormat | SavedFormat | None:
    """How a safetensors checkpoint folder stores quantized matrices, if it does."""
    if (root / SAVED_JSON).is_file():
        return SavedFormat(root)
    if kind != "hf":
        return None
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightLoadError(f"cannot read {root / 'config.json'}: {exc}") from exc
    return packed_format(config)
