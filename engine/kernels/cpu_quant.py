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

_SOURCES = [Path(__file__).with_name(n) for n in ("cpu_quant.c", "cpu_quant_k.c")]
# GGML type id -> (values per block, bytes per block) for the types the kernel reads:
# Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
KERNEL_TYPES = {
    2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    12: (256, 144), 13: (256, 176), 14: (256, 210),
}  # fmt: skip


@functools.cache
def _library() -> ctypes.CDLL | None:
    lib = build_library(_SOURCES, "cpu_quant")
    if lib is None:
        return None
    i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    lib.vibe_qlinear.argtypes = [i32, ptr, i64, ptr, i64, ptr, i64, i64, i64, i64]
    lib.vibe_qlinear.restype = i32
    lib.vibe_dequant.argtypes = [i32, ptr, i64, ptr, i64, i64, i64]
    lib.vibe_dequant.restype = i32
    return lib


def enabled() -> bool:
    """True when the quantized kernel is switched on (VIBE_CPU_KERNELS) and builds."""
    return switched_on() and _library() is not None


def kernel_runs(qtype: int, cols: int) -> bool:
    """True when the C kernel multiplies [*, cols] matrices of GGML type `qtype` as stored."""
    return qtype in KERNEL_TYPES and cols % KERNEL_TYPES[qtype][0] == 0 and enabled()


def dequantize(data: torch.Tensor, qtype: int, cols: int) -> torch.Tensor:
    """fp32 [rows, cols] values of `data` (uint8 [rows, bytes per row], GGML blocks)."""
    rows = data.shape[0]
    lib = _library() if qtype in KERNEL_TYPES and enabled() else None
    if lib is not None and data.stride(-1) == 1:
        out = torch.empty((rows, cols), dtype=torch.float32)
        rc = lib.vibe_dequant(
            qtype, data.data_ptr(), data.stride(0), out.data_ptr(), cols, rows, cols
        )
        if rc == 0:
            return out
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    values = gguf_dequantize(data.contiguous().numpy(), GGMLQuantizationType(qtype))
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(rows, cols)


# At this many activation rows and more (prefill chunks), dequantising SLICE weight rows at a
# time and multiplying with MKL's fp32 GEMM beats the int8 kernel, which is compute-bound there
# (2-core Zen 4, 2 threads: 1.2-2.0x per product at 128 rows, 1.3-2.6x at 512; at 64 rows it
# varies 0.9-1.7x with the shape). The slices bound the extra memory to SLICE rows of fp32.
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
    lib = _library() if M > 0 and qtype in KERNEL_TYPES and enabled() else None
    if lib is None or data.stride(-1) != 1 or (x.requires_grad and torch.is_grad_enabled()):
        w = dequantize(data, qtype, cols).to(x.dtype)
        return torch.nn.functional.linear(x, w)
    if x2.dtype != torch.float32 or x2.stride(-1) != 1:
        x2 = x2.float().contiguous()
    if M >= DEQUANT_ROWS:  # long prefill chunks: MKL on dequantised slices wins
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
