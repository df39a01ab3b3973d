"""Linear layers on GGUF-quantized weights kept as stored: `cpu_quant.c` (Q4_0, Q4_1, Q5_0,
Q5_1, Q8_0) and `cpu_quant_k.c` (the K-quants Q4_K, Q5_K, Q6_K), linked into one library.

Decode (1 row) and prefill (many rows) both run the C kernel: activations are quantized to
int8 blocks of 32 per call and each weight block is one integer dot product. Measured on the
2-core Zen 4 VM (scripts/bench_quant.py): at 1 row 1.4-2.4x faster than fp32 MKL on expanded
weights (10x on the Q8_0 LM head) and 6-50x faster than dequantising per call or torch's
int4/int8 weight-only CPU ops; at 8-64 rows faster than dequantise-per-call but 1.1-1.9x
slower than fp32 MKL on the layer matrices (prefill tiling is the next step). Built like `cpu_linear.c` (first use, per-CPU
cache, `cc -O3 -march=native -fopenmp`); without a compiler, or with `VIBE_CPU_KERNELS=0`,
weights are dequantised per call in torch (same values, slower).
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np
import torch

from engine.kernels.cpu_linear import build_library, switched_on

SOURCES = [
    Path(__file__).with_name(n)
    for n in ("cpu_quant.c", "cpu_quant_k.c", "cpu_quant_tile.c", "cpu_quant_ktile.c")
]
# GGML type id -> (values per block, bytes per block) for the types the kernel reads:
# Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
KERNEL_TYPES = {
    2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    12: (256, 144), 13: (256, 176), 14: (256, 210),
}  # fmt: skip
# A type | PACKED: the same blocks repacked at load into tiles of TILE rows, one SIMD lane per
# row (cpu_quant_tile.c); the kernel's fast layout for the types in TILE_TYPES.
PACKED, TILE, TILE_TYPES = 256, 8, frozenset((2, 3, 6, 7, 8, 12, 13, 14))


@functools.cache
def _library() -> ctypes.CDLL | None:
    lib = build_library(SOURCES, "cpu_quant")
    if lib is None:
        return None
    i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    lib.vibe_qlinear.argtypes = [i32, ptr, i64, ptr, i64, ptr, i64, i64, i64, i64]
    lib.vibe_qlinear.restype = i32
    lib.vibe_dequant.argtypes = [i32, ptr, i64, ptr, i64, i64, i64]
    lib.vibe_dequant.restype = i32
    lib.vibe_pack.argtypes = [i32, ptr, i64, i64, ptr]
    lib.vibe_pack.restype = i32
    lib.vibe_packed_row_bytes.argtypes = [i32, i64]
    lib.vibe_packed_row_bytes.restype = i64
    lib.vibe_tiles_simd.restype = i32
    lib.vibe_unpack_rows.argtypes = [i32, ptr, i64, ptr, i64, i64, ptr]
    lib.vibe_unpack_rows.restype = i32
    return lib


def enabled() -> bool:
    """True when the quantized kernel is switched on (VIBE_CPU_KERNELS) and builds."""
    return switched_on() and _library() is not None


def kernel_runs(qtype: int, cols: int) -> bool:
    """True when the C kernel multiplies [*, cols] matrices of GGML type `qtype` (| PACKED)."""
    base = qtype & ~PACKED
    return base in KERNEL_TYPES and cols % KERNEL_TYPES[base][0] == 0 and enabled()


def packable(qtype: int, rows: int, cols: int) -> bool:
    """True when `pack` applies: a tile type, whole tiles, and the kernel built with SIMD
    (AVX2 / AVX-512; elsewhere the stored rows are faster)."""
    if qtype not in TILE_TYPES or rows % TILE or cols < 1 or not kernel_runs(qtype, cols):
        return False
    lib = _library()
    return lib is not None and bool(lib.vibe_tiles_simd())


def packed_row_bytes(qtype: int, cols: int) -> int:
    """Bytes of one row of a packed matrix of `cols` columns (`packable` must hold)."""
    lib = _library()
    if lib is None:
        raise ValueError("the quantized kernel is not built")
    return int(lib.vibe_packed_row_bytes(qtype, cols))


def pack(data: torch.Tensor, qtype: int, cols: int) -> torch.Tensor:
    """The blocks of `data` (contiguous uint8 [rows, bytes per row]; `packable` must hold)
    repacked into tiles, type `qtype | PACKED`: in place where a tiled row takes the bytes of a
    stored one, else (Q4_K: 148 bytes a super-block instead of 144) in a new tensor."""
    lib = _library()
    if lib is None or not data.is_contiguous() or not packable(qtype, data.shape[0], cols):
        raise ValueError(f"cannot pack a {tuple(data.shape)} matrix of type {qtype}")
    row_bytes = packed_row_bytes(qtype, cols)
    out = (
        data
        if row_bytes == data.shape[1]
        else torch.empty((data.shape[0], row_bytes), dtype=torch.uint8)
    )
    if lib.vibe_pack(qtype, data.data_ptr(), data.shape[0], cols, out.data_ptr()) != 0:
        raise MemoryError("out of memory repacking a quantized matrix")
    return out


def unpack_rows(data: torch.Tensor, qtype: int, cols: int, ids: torch.Tensor) -> torch.Tensor:
    """Rows `ids` [n] of a packed matrix (`qtype` | PACKED) as GGML blocks [n, bytes per row]."""
    lib = _library()
    ids = ids.reshape(-1).to(torch.int64).contiguous()
    block, size = KERNEL_TYPES[qtype & ~PACKED]
    out = torch.empty((ids.numel(), cols // block * size), dtype=torch.uint8)
    if (
        lib is None
        or data.stride(-1) != 1
        or (ids.numel() and not (int(ids.min()) >= 0 and int(ids.max()) < data.shape[0]))
    ):
        raise IndexError(f"rows out of range for a packed matrix of {data.shape[0]} rows")
    rc = lib.vibe_unpack_rows(
        qtype, data.data_ptr(), data.stride(0), ids.data_ptr(), ids.numel(), cols, out.data_ptr()
    )
    if rc != 0:
        raise ValueError(f"type {qtype} is not a packed type")
    return out


def dequantize(data: torch.Tensor, qtype: int, cols: int) -> torch.Tensor:
    """fp32 [rows, cols] values of `data` (uint8 [rows, bytes per row], GGML blocks, or
    tiles when `qtype` has PACKED: those only the C kernel reads)."""
    rows = data.shape[0]
    lib = _library() if kernel_runs(qtype, cols) or qtype & PACKED else None
    if lib is not None and data.stride(-1) == 1:
        out = torch.empty((rows, cols), dtype=torch.float32)
        rc = lib.vibe_dequant(
            qtype, data.data_ptr(), data.stride(0), out.data_ptr(), cols, rows, cols
        )
        if rc == 0:
            return out
    if qtype & PACKED:
        raise ValueError("packed weights need the C kernel (VIBE_CPU_KERNELS was turned off?)")
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    values = gguf_dequantize(data.contiguous().numpy(), GGMLQuantizationType(qtype))
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(rows, cols)


# At this many activation rows and more (prefill chunks), dequantising SLICE weight rows at a
# time and multiplying with MKL's fp32 GEMM beats the row-by-row int8 kernel, which is
# compute-bound there (2-core Zen 4, 2 threads: 1.2-2.0x per product at 128 rows, 1.3-2.6x at
# 512). Packed tiles are not: they beat it 2.3-6x from 32 to 512 rows, and always run the kernel.
# The slices bound the extra memory to SLICE rows of fp32.
DEQUANT_ROWS, SLICE = 128, 512


def _dequant_linear(x: torch.Tensor, data: torch.Tensor, qtype: int, cols: int) -> torch.Tensor:
    N = data.shape[0]
    out = torch.empty((x.shape[0], N), dtype=torch.float32)
    for r in range(0, N, SLICE):
        w = dequantize(data[r : r + SLICE], qtype, cols)
        out[:, r : r + SLICE] = torch.nn.functional.linear(x, w)
    return out


def qlinear(x: torch.Tensor, data: torch.Tensor, qtype: int, cols: int) -> torch.Tensor:
    """x [..., cols] @ W.T for the quantized W (uint8 [N, bytes per row]); x's dtype out.
    (A decode step makes ~4 calls a layer: the common case takes few Python steps.)"""
    N = data.shape[0]
    x2 = x if x.dim() == 2 else x.reshape(-1, cols)
    M = x2.shape[0]
    lib = _library() if M > 0 and kernel_runs(qtype, cols) else None
    if lib is None or data.stride(-1) != 1 or (x.requires_grad and torch.is_grad_enabled()):
        w = dequantize(data, qtype, cols).to(x.dtype)
        return torch.nn.functional.linear(x, w)
    if x2.dtype != torch.float32 or x2.stride(-1) != 1:
        x2 = x2.float().contiguous()
    if M >= DEQUANT_ROWS and not qtype & PACKED:  # long prefill: MKL on dequantised slices
        out = _dequant_linear(x2, data, qtype, cols)
        out = out if x.dtype == torch.float32 else out.to(x.dtype)
        return out if x.dim() == 2 else out.view(*x.shape[:-1], N)
    out = torch.empty((M, N), dtype=torch.float32)
    rc = lib.vibe_qlinear(
        qtype, data.data_ptr(), data.stride(0), x2.data_ptr(), x2.stride(0),
        out.data_ptr(), N, M, N, cols,
    )  # fmt: skip
    if rc != 0:
        return torch.nn.functional.linear(x, dequantize(data, qtype, cols).to(x.dtype))
    if x.dtype != torch.float32:
        out = out.to(x.dtype)
    return out if x.dim() == 2 else out.view(*x.shape[:-1], N)
