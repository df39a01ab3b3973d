"""Micro-benchmark of the CPU matmul paths for GGUF-quantized weights, on SmolLM2's shapes
and a 2048x2048 matrix of each kept type (Q4_K/Q5_K/Q6_K as random valid blocks).

Candidates, alternated round by round (medians reported; other load on the box varies):
  tiles       the kernel on the blocks repacked into 8-row tiles (what a loaded model runs)
  kernel      engine/kernels/cpu_quant.c row by row on the stored blocks (int8 activations)
  dequant     dequantise the blocks per call (C) + F.linear (MKL)
  fp32        F.linear on fp32 weights expanded at load (today's path)
  torch_int8  aten._weight_int8pack_mm (per-row int8 weights, bf16/fp32 activations)
  torch_int4  aten._weight_int4pack_mm_for_cpu (groupwise int4, groups of 32)
Each row also gives the kernel's weight bytes read per second (GB/s).
Usage: python scripts/bench_quant.py [--threads 2] [--rows 1 64] [--rounds 7] [--json]
       [--only square]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine.kernels import cpu_quant
from engine.quant import type_name

# (name, N, K, GGML type): SmolLM2-135M's fused qkv, gate|up, down, o and its Q8_0 LM head.
SHAPES = [
    ("wqkv", 960, 576, 3),
    ("w13", 3072, 576, 3),
    ("w2", 576, 1536, 3),
    ("wo", 576, 576, 3),
    ("lm_head", 49152, 576, 8),
] + [("square", 2048, 2048, t) for t in (2, 3, 6, 7, 8, 12, 13, 14)]

# Byte offsets of each block's fp16 fields (d, and dmin / m where the type has one).
_HALVES = {2: (0,), 3: (0, 2), 6: (0,), 7: (0, 2), 8: (0,), 12: (0, 2), 13: (0, 2), 14: (208,)}


def random_blocks(rows: int, cols: int, qtype: int, seed: int) -> torch.Tensor:
    """Valid GGML blocks of a kernel type: random bytes with finite fp16 scales of a sane size
    (gguf-py has no K-quant quantizer)."""
    block, size = cpu_quant.KERNEL_TYPES[qtype]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
    for off in _HALVES[qtype]:
        half = (rng.uniform(-1, 1, raw.shape[:2]) * 1e-2).astype(np.float16)
        raw[..., off : off + 2] = half.view(np.uint8).reshape(*raw.shape[:2], 2)
    return torch.from_numpy(raw.reshape(rows, -1))


def quantized(w: torch.Tensor, qtype: int) -> torch.Tensor:
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    return torch.from_numpy(np.ascontiguousarray(quantize(w.numpy(), GGMLQuantizationType(qtype))))


def candidates(
    data: torch.Tensor, qtype: int, K: int
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    N = data.shape[0]
    fp32 = cpu_quant.dequantize(data, qtype, K)
    out: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    if cpu_quant.packable(qtype, N, K):
        tiles = cpu_quant.pack(data.clone(), qtype, K)
        out["tiles"] = lambda x: cpu_quant.qlinear(x, tiles, qtype | cpu_quant.PACKED, K)
    out |= {
        "kernel": lambda x: cpu_quant.qlinear(x, data, qtype, K),
        "dequant": lambda x: F.linear(x, cpu_quant.dequantize(data, qtype, K)),
        "fp32": lambda x: F.linear(x, fp32),
    }
    scale = fp32.abs().amax(1).clamp_min(1e-8) / 127
    w8 = (fp32 / scale[:, None]).round().to(torch.int8)
    out["torch_int8"] = lambda x: torch.ops.aten._weight_int8pack_mm(x, w8, scale)
    try:
        g = 32
        grouped = fp32.view(N, K // g, g)
        lo, hi = grouped.amin(-1), grouped.amax(-1)
        s = ((hi - lo) / 15).clamp_min(1e-8)
        q = ((grouped - lo[..., None]) / s[..., None]).round().clamp(0, 15).to(torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.view(N, K), 1)
        zeros = lo + 8 * s  # the op computes (q - 8) * scale + zero
        sz = torch.stack([s, zeros], -1).transpose(0, 1).contiguous()  # [K/g, N, 2]
        out["torch_int4"] = lambda x: torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, g, sz)
    except RuntimeError:
        pass
    return out


def time_call(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, n: int) -> float:
    fn(x)
    t = time.perf_counter()
    for _ in range(n):
        fn(x)
    return (time.perf_counter() - t) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", help="run only the shapes of this name (e.g. square)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    results: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        for name, N, K, qtype in SHAPES:
            if args.only and name != args.only:
                continue
            if name == "square":
                data = random_blocks(N, K, qtype, seed=qtype)
            else:
                data = quantized(torch.randn(N, K, generator=gen) * 0.05, qtype)
            cands = candidates(data, qtype, K)
            for m in args.rows:
                x = torch.randn(m, K, generator=gen)
                n = max(3, int(2e7 / (N * K * max(1, m // 8))))
                times: dict[str, list[float]] = {c: [] for c in cands}
                for _ in range(args.rounds):
                    for c, fn in cands.items():
                        times[c].append(time_call(fn, x, n))
                row = {c: round(statistics.median(v) * 1e6, 1) for c, v in times.items()}
                nbytes = data.numel()
                if "tiles" in row:  # Q4_K / Q5_K tiles are a little larger than stored rows
                    nbytes = N * cpu_quant.packed_row_bytes(qtype, K)
                gbps = round(nbytes / (row.get("tiles", row["kernel"]) * 1e3), 1)
                label = f"{name} {type_name(qtype)} [{N}x{K}] M={m}"
                results[label] = row | {"kernel_GB/s": gbps}
                if not args.json:
                    cells = "  ".join(f"{c} {us:>8.1f}" for c, us in row.items())
                    print(f"{label:>30} us: {cells}  kernel {gbps} GB/s", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
