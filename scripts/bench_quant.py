"""Micro-benchmark of the CPU matmul paths for GGUF-quantized weights, on SmolLM2's shapes.

Candidates, alternated round by round (medians reported; other load on the box varies):
  kernel      engine/kernels/cpu_quant.c on the stored blocks (int8 activations)
  dequant     dequantise the blocks per call (C) + F.linear (MKL)
  fp32        F.linear on fp32 weights expanded at load (today's path)
  torch_int8  aten._weight_int8pack_mm (per-row int8 weights, bf16/fp32 activations)
  torch_int4  aten._weight_int4pack_mm_for_cpu (groupwise int4, groups of 32)
Usage: python scripts/bench_quant.py [--threads 2] [--rows 1 64] [--rounds 7] [--json]
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

# (name, N, K, GGML type): SmolLM2-135M's fused qkv, gate|up, down, o and its Q8_0 LM head.
SHAPES = [
    ("wqkv", 960, 576, 3),
    ("w13", 3072, 576, 3),
    ("w2", 576, 1536, 3),
    ("wo", 576, 576, 3),
    ("lm_head", 49152, 576, 8),
]


def quantized(w: torch.Tensor, qtype: int) -> torch.Tensor:
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    return torch.from_numpy(np.ascontiguousarray(quantize(w.numpy(), GGMLQuantizationType(qtype))))


def candidates(w: torch.Tensor, qtype: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    N, K = w.shape
    data = quantized(w, qtype)
    fp32 = cpu_quant.dequantize(data, qtype, K)
    out: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
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
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    results: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        for name, N, K, qtype in SHAPES:
            cands = candidates(torch.randn(N, K, generator=gen) * 0.05, qtype)
            for m in args.rows:
                x = torch.randn(m, K, generator=gen)
                n = max(3, int(2e7 / (N * K * max(1, m // 8))))
                times: dict[str, list[float]] = {c: [] for c in cands}
                for _ in range(args.rounds):
                    for c, fn in cands.items():
                        times[c].append(time_call(fn, x, n))
                row = {c: round(statistics.median(v) * 1e6, 1) for c, v in times.items()}
                results[f"{name} [{N}x{K}] M={m}"] = row
                if not args.json:
                    cells = "  ".join(f"{c} {us:>8.1f}" for c, us in row.items())
                    print(f"{name:>8} {N:>5}x{K:<5} M={m:<3} us: {cells}", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
