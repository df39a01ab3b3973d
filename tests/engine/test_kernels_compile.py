"""Compile every Triton kernel for an sm_90 GPU in bf16 without a GPU: the interpreter runs neither
bf16 nor the compiler's type checks, so this is the CPU's only look at the real build."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason="with CUDA, test_kernels.py runs the compiled kernels"
)

ROOT = Path(__file__).resolve().parents[2]
I32 = "i32"
ATTENTION = {
    "GROUP": 4,
    "HEAD_DIM": 128,
    "NUM_SPLITS": 8,
    "LEN_FROM_PTR": True,
    "SLOTS": True,
    "HAS_WINDOW": True,
    "DOT_PRECISION": "tf32",
    "BLOCK_M": 16,
    "BLOCK_N": 64,
    "BLOCK_D": 128,
}
COMBINE = {k: ATTENTION[k] for k in ("GROUP", "HEAD_DIM", "NUM_SPLITS", "BLOCK_M", "BLOCK_D")}
# module, kernel, runtime argument types (by name), constexprs
KERNELS = [
    (
        "triton_norm",
        "_rmsnorm_kernel",
        {"x_ptr": "*bf16", "res_ptr": "*bf16", "w_ptr": "*bf16", "out_ptr": "*bf16"}
        | {"res_out_ptr": "*bf16", "n_cols": I32, "eps": "fp32"},
        {"HAS_RESIDUAL": True, "BLOCK": 8192},
    ),
    (
        "triton_rotary",
        "_rotary_kernel",
        {"q_ptr": "*bf16", "k_ptr": "*bf16", "cos_ptr": "*fp32", "sin_ptr": "*fp32"}
        | {"q_out_ptr": "*bf16", "k_out_ptr": "*bf16", "n_q_heads": I32, "n_k_heads": I32}
        | {"stride_q_tok": I32, "stride_q_head": I32, "stride_k_tok": I32, "stride_k_head": I32}
        | {"stride_cs_tok": I32},
        {"HALF": 64, "BLOCK_H": 32, "BLOCK_HALF": 64},
    ),
    (
        "triton_kv",
        "_kv_write_kernel",
        {"k_ptr": "*bf16", "v_ptr": "*bf16", "k_cache_ptr": "*bf16", "v_cache_ptr": "*bf16"}
        | {"pos_ptr": "*i64", "max_len": I32, "n_kv": I32, "stride_src_tok": I32}
        | {"stride_cache_pos": I32, "stride_cache_head": I32},
        {"HEAD_DIM": 128, "BLOCK_H": 8, "BLOCK_D": 128},
    ),
    (
        "triton_attention",
        "_split_kernel",
        {"q_ptr": "*bf16", "k_ptr": "*bf16", "v_ptr": "*bf16", "len_ptr": "*i64"}
        | {"slot_ptr": "*i64"}
        | {"out_ptr": "*bf16", "part_o_ptr": "*fp32", "part_lse_ptr": "*fp32", "seq_len": I32}
        | {"max_len": I32}
        | {"qk_scale": "fp32", "window": I32, "n_queries": I32}
        | {f"stride_{s}": I32 for s in ("qb", "qt", "qh", "ks", "kn", "kh", "vs", "vn", "vh")}
        | {f"stride_{s}": I32 for s in ("ob", "ot", "oh")},
        ATTENTION,
    ),
    (
        "triton_attention",
        "_combine_kernel",
        {"part_o_ptr": "*fp32", "part_lse_ptr": "*fp32", "out_ptr": "*bf16"}
        | {"stride_ob": I32, "stride_ot": I32, "stride_oh": I32},
        COMBINE | {"BLOCK_S": 8},
    ),
]


def compile_all() -> dict[str, str]:
    """Compile each kernel; {kernel: "ok" or the error}. Run in a fresh process: the interpreter
    (used by test_kernels.py) patches triton.language in place, which breaks compiling after it."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    results = {}
    for module, kernel, signature, constexprs in KERNELS:
        fn = getattr(importlib.import_module(f"engine.kernels.{module}"), kernel)
        src = ASTSource(
            fn=fn,
            signature=signature | dict.fromkeys(constexprs, "constexpr"),
            constexprs=constexprs,
        )
        try:
            compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
        except Exception as exc:  # report every kernel, not just the first failure
            results[kernel] = f"{type(exc).__name__}: {exc}"
            continue
        ok = f".entry {kernel}" in compiled.asm["ptx"]
        results[kernel] = "ok" if ok else "no entry point in the PTX"
    return results


def test_kernels_compile_for_sm90_bf16() -> None:
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # today's default; silences a notice
    proc = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results == {kernel: "ok" for _, kernel, _, _ in KERNELS}


if __name__ == "__main__":
    print(json.dumps(compile_all()))
