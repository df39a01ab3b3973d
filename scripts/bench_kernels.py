"""Time the engine's Triton kernels against their torch references on one GPU (decode shapes).

    python -m scripts.bench_kernels [--dtype bf16|fp16] [--contexts 1024 8192 32768] [--json]

Each op is checked against its reference before it is timed. Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

import torch

from engine.kernels import reference

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _time_us(fn: Callable[[], object], iters: int = 200) -> float:
    """Mean time of `iters` back-to-back calls after a warm-up, in microseconds."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000 / iters


def _max_err(a: object, b: object) -> float:
    if isinstance(a, tuple):
        return max(_max_err(x, y) for x, y in zip(a, b, strict=True))
    if a.dtype == torch.int64:  # type: ignore[union-attr]
        return float((a != b).sum())  # type: ignore[operator]
    return float((a.float() - b.float()).abs().max())  # type: ignore[union-attr]


def _cases(args: argparse.Namespace) -> list[tuple[str, str, Callable, Callable]]:
    from engine.kernels import (
        triton_attention,
        triton_kv,
        triton_norm,
        triton_rotary,
    )

    dev, dt = "cuda", DTYPES[args.dtype]
    h, nq, nkv, d = args.hidden, args.heads, args.kv_heads, args.head_dim
    cases: list[tuple[str, str, Callable, Callable]] = []
    for t in (1, 4):
        x = torch.randn(t, h, device=dev, dtype=dt)
        r = torch.randn(t, h, device=dev, dtype=dt)
        w = torch.randn(h, device=dev, dtype=dt)
        cases.append(
            (
                "add_rmsnorm",
                f"T={t} hidden={h}",
                lambda x=x, r=r, w=w: reference.add_rmsnorm(x, r, w, 1e-5),
                lambda x=x, r=r, w=w: triton_norm.add_rmsnorm(x, r, w, 1e-5),
            )
        )
        q = torch.randn(t, nq, d, device=dev, dtype=dt)
        k = torch.randn(t, nkv, d, device=dev, dtype=dt)
        cos, sin = torch.randn(t, d, device=dev), torch.randn(t, d, device=dev)
        cases.append(
            (
                "apply_rotary",
                f"T={t} Hq={nq} Hkv={nkv} D={d}",
                lambda q=q, k=k, c=cos, s=sin: reference.apply_rotary(q, k, c, s),
                lambda q=q, k=k, c=cos, s=sin: triton_rotary.apply_rotary(q, k, c, s),
            )
        )
    max_ctx = max(args.contexts)
    kc = torch.randn(max_ctx, nkv, d, device=dev, dtype=dt)
    vc = torch.randn(max_ctx, nkv, d, device=dev, dtype=dt)
    kn, vn = (
        torch.randn(4, nkv, d, device=dev, dtype=dt),
        torch.randn(4, nkv, d, device=dev, dtype=dt),
    )
    pos = torch.arange(4, device=dev)
    cases.append(
        (
            "kv_cache_write",
            f"T=4 Hkv={nkv} D={d}",
            lambda: (reference.kv_cache_write(kc, vc, kn, vn, pos), kc[:4].clone())[1],
            lambda: (triton_kv.kv_cache_write(kc, vc, kn, vn, pos), kc[:4].clone())[1],
        )
    )
    for ctx in args.contexts:
        for t in (1, 4):
            q = torch.randn(t, nq, d, device=dev, dtype=dt)
            length = torch.tensor([ctx], device=dev)
            cases.append(
                (
                    "decode_attention",
                    f"T={t} ctx={ctx} Hq={nq} Hkv={nkv}",
                    lambda q=q, n=ctx: reference.decode_attention(q, kc, vc, n, d**-0.5),
                    lambda q=q, n=length: triton_attention.decode_attention(q, kc, vc, n, d**-0.5),
                )
            )
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--hidden", type=int, default=5120)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--contexts", type=int, nargs="+", default=[1024, 8192, 32768])
    parser.add_argument(
        "--json", action="store_true", help="print one JSON list instead of a table"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_kernels: CUDA is not available; nothing to benchmark.")
        return 0
    try:
        import triton  # noqa: F401
    except ImportError:
        print("bench_kernels: triton is not installed; nothing to benchmark.")
        return 0
    if os.environ.get("TRITON_INTERPRET") == "1":
        print(
            "bench_kernels: unset TRITON_INTERPRET to benchmark compiled kernels.", file=sys.stderr
        )
        return 1
    torch.manual_seed(0)
    rows = []
    for op, shape, ref_fn, fast_fn in _cases(args):
        err = _max_err(fast_fn(), ref_fn())
        ref_us, fast_us = _time_us(ref_fn), _time_us(fast_fn)
        rows.append(
            {
                "op": op,
                "shape": shape,
                "torch_us": round(ref_us, 2),
                "triton_us": round(fast_us, 2),
                "speedup": round(ref_us / fast_us, 2),
                "max_err": err,
            }
        )
    if args.json:
        print(
            json.dumps({"device": torch.cuda.get_device_name(), "dtype": args.dtype, "rows": rows})
        )
        return 0
    print(f"{torch.cuda.get_device_name()}  dtype={args.dtype}")
    print(
        f"{'op':<30} {'shape':<32} {'torch us':>9} {'triton us':>10} {'speedup':>8} {'max err':>9}"
    )
    for r in rows:
        print(
            f"{r['op']:<30} {r['shape']:<32} {r['torch_us']:>9.1f} {r['triton_us']:>10.1f} "
            f"{r['speedup']:>7.2f}x {r['max_err']:>9.3g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
