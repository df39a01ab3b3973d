"""GGUF K-quants (Q4_K, Q5_K, Q6_K) run as stored: dequantisation against gguf-py, the kernel
against F.linear on the dequantised matrix, the plain-C build against the SIMD one, and a tiny
Q4_K / Q5_K / Q6_K model against its --dequantize twin.

Tolerances: the kernel quantizes activations to int8 blocks of 32 (as llama.cpp does), so one
product is within 1% (relative L2) of the fp32 one, and a tiny model's logits within 3%, with
the same greedy tokens. Dequantisation matches gguf-py to 1e-6; the plain C and SIMD kernels
agree to float rounding (1e-5).
"""

from __future__ import annotations

import ctypes
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

gguf = pytest.importorskip("gguf")

from engine.checkpoint import resolve  # noqa: E402
from engine.engine import load_model  # noqa: E402
from engine.kernels import cpu_decode, cpu_quant  # noqa: E402
from engine.quant import KEPT, QuantWeight, StackedWeight  # noqa: E402
from scripts.bench_quant import random_blocks  # noqa: E402
from tests.engine.test_quant import _greedy, _logits, _rel, write_tiny_gguf  # noqa: E402

QK_K = 256
K_TYPES = {"Q4_K": 12, "Q5_K": 13, "Q6_K": 14}
ALL_TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8} | K_TYPES
needs_compiler = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


def _fp16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


def quantize_k(values: np.ndarray, qtype: int) -> np.ndarray:
    """A plain min/max K-quantizer (gguf-py has none): [rows, cols] -> uint8 blocks."""
    rows = values.shape[0]
    x = values.astype(np.float32).reshape(-1, QK_K)
    n = x.shape[0]
    if qtype == 14:
        sub = x.reshape(n, 16, 16)
        scale = np.abs(sub).max(-1) / 31 + 1e-12
        d = _fp16(scale.max(-1) / 127)
        sc = np.clip(np.round(scale / d[:, None]), 1, 127).astype(np.int8)
        step = (d[:, None] * sc)[..., None]
        q = (np.clip(np.round(sub / step), -32, 31) + 32).astype(np.uint8).reshape(n, 2, 4, 32)
        lo, hi = q & 15, q >> 4
        ql = np.concatenate([lo[:, :, 0] | lo[:, :, 2] << 4, lo[:, :, 1] | lo[:, :, 3] << 4], -1)
        qh = hi[:, :, 0] | hi[:, :, 1] << 2 | hi[:, :, 2] << 4 | hi[:, :, 3] << 6
        dd = d.astype(np.float16).view(np.uint8).reshape(n, 2)
        parts = [ql.reshape(n, 128), qh.reshape(n, 64), sc.view(np.uint8), dd]
        return np.concatenate(parts, -1).reshape(rows, -1)
    levels = 15 if qtype == 12 else 31
    sub = x.reshape(n, 8, 32)
    lo, hi = np.minimum(sub.min(-1), 0), sub.max(-1)
    scale, mins = (hi - lo) / levels + 1e-12, -lo
    d, dmin = _fp16(scale.max(-1) / 63), _fp16(mins.max(-1) / 63 + 1e-12)
    sc = np.clip(np.round(scale / d[:, None]), 1, 63).astype(np.uint8)
    mn = np.clip(np.round(mins / dmin[:, None]), 0, 63).astype(np.uint8)
    step, zero = (d[:, None] * sc)[..., None], (dmin[:, None] * mn)[..., None]
    q = np.clip(np.round((sub + zero) / step), 0, levels).astype(np.uint8)  # [n, 8, 32]
    packed = np.concatenate([
        sc[:, :4] | (sc[:, 4:] >> 4) << 6, mn[:, :4] | (mn[:, 4:] >> 4) << 6,
        (sc[:, 4:] & 15) | (mn[:, 4:] & 15) << 4,
    ], -1)  # fmt: skip
    qs = ((q[:, 0::2] & 15) | (q[:, 1::2] & 15) << 4).reshape(n, 128)
    head = [d.astype(np.float16).view(np.uint8).reshape(n, 2)]
    head += [dmin.astype(np.float16).view(np.uint8).reshape(n, 2), packed]
    if qtype == 13:
        head.append(((q >> 4) << np.arange(8, dtype=np.uint8)[:, None]).sum(1, dtype=np.uint8))
    return np.concatenate([*head, qs], -1).reshape(rows, -1)


def _gguf_dequant(data: torch.Tensor, qtype: int) -> torch.Tensor:
    values = gguf.quants.dequantize(data.numpy(), gguf.GGMLQuantizationType(qtype))
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def test_the_kernel_types_are_kept_as_stored() -> None:
    kernel = set(ALL_TYPES.values())
    assert set(cpu_quant.KERNEL_TYPES) == kernel and kernel <= KEPT
    for qtype, (block, size) in cpu_quant.KERNEL_TYPES.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(qtype)] == (block, size)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_dequantize_matches_gguf_py_on_random_blocks(name: str) -> None:
    qtype = ALL_TYPES[name]
    assert cpu_quant.enabled() or shutil.which("cc") is None
    data = random_blocks(7, 512, qtype, seed=qtype)
    ref = _gguf_dequant(data, qtype)
    torch.testing.assert_close(cpu_quant.dequantize(data, qtype, 512), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", K_TYPES)
def test_the_test_quantizer_round_trips_through_gguf_py(name: str) -> None:
    qtype = K_TYPES[name]
    w = torch.randn(16, 512, generator=torch.Generator().manual_seed(qtype)).numpy()
    back = _gguf_dequant(torch.from_numpy(quantize_k(w, qtype)), qtype).reshape(16, 512)
    assert _rel(back, torch.from_numpy(w)) < {12: 0.12, 13: 0.06, 14: 0.03}[qtype]


@needs_compiler
@pytest.mark.parametrize("name", K_TYPES)
@pytest.mark.parametrize("m", [1, 3, 4, 17, 300])
def test_kernel_matches_dequantised_linear(name: str, m: int) -> None:
    assert cpu_quant.enabled(), "cpu_quant.c failed to compile or load"
    qtype = K_TYPES[name]
    data = random_blocks(61, 768, qtype, seed=m + qtype)
    x = torch.randn(m, 768, generator=torch.Generator().manual_seed(m))
    ref = F.linear(x, cpu_quant.dequantize(data, qtype, 768))
    out = cpu_quant.qlinear(x, data, qtype, 768)
    assert out.shape == (m, 61) and _rel(out, ref) < 1e-2


@needs_compiler
@pytest.mark.parametrize("name", K_TYPES)
def test_a_row_does_not_depend_on_how_many_rows_come_with_it(name: str) -> None:
    qtype = K_TYPES[name]
    data = random_blocks(50, 512, qtype, seed=3)
    x = torch.randn(9, 512, generator=torch.Generator().manual_seed(4))
    full = cpu_quant.qlinear(x, data, qtype, 512)
    for m in (1, 2, 5):
        assert torch.equal(cpu_quant.qlinear(x[:m], data, qtype, 512), full[:m])


def _library_for(tmp_path: Path, march: str) -> ctypes.CDLL:
    """cpu_quant*.c built for another CPU: x86-64 (no AVX2: the plain C paths) or haswell
    (AVX2 without AVX-512: the maddubs dot products)."""
    out = tmp_path / f"{march}.so"
    cmd = ["cc", "-O2", f"-march={march}", "-fopenmp", "-shared", "-fPIC"]
    cmd += [str(s) for s in cpu_quant.SOURCES] + ["-o", str(out), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    lib = ctypes.CDLL(str(out))
    i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    lib.vibe_qlinear.argtypes = [i32, ptr, i64, ptr, i64, ptr, i64, i64, i64, i64]
    lib.vibe_dequant.argtypes = [i32, ptr, i64, ptr, i64, i64, i64]
    lib.vibe_pack.argtypes = [i32, ptr, i64, i64, ptr]
    lib.vibe_packed_row_bytes.argtypes = [i32, i64]
    lib.vibe_packed_row_bytes.restype = i64
    return lib


@needs_compiler
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the SIMD build is x86-64's")
@pytest.mark.parametrize("march", ["x86-64", "haswell"])
def test_other_builds_match_this_one(tmp_path: Path, march: str) -> None:
    lib = _library_for(tmp_path, march)
    N, K = 40, 512
    x = torch.randn(5, K, generator=torch.Generator().manual_seed(9))
    for qtype in ALL_TYPES.values():
        data = random_blocks(N, K, qtype, seed=qtype + 50)
        values = torch.empty(N, K)
        assert lib.vibe_dequant(qtype, data.data_ptr(), data.stride(0), values.data_ptr(),
                                  K, N, K) == 0  # fmt: skip
        torch.testing.assert_close(values, _gguf_dequant(data, qtype), rtol=1e-6, atol=1e-6)
        for m in (1, 5):
            out = torch.empty(m, N)
            rc = lib.vibe_qlinear(qtype, data.data_ptr(), data.stride(0), x.data_ptr(), K,
                                    out.data_ptr(), N, m, N, K)  # fmt: skip
            assert rc == 0
            simd = cpu_quant.qlinear(x[:m], data, qtype, K)
            torch.testing.assert_close(out, simd, rtol=1e-5, atol=1e-5 * float(simd.abs().max()))
        if qtype not in cpu_quant.TILE_TYPES:
            continue
        # The tiled layout: the same bytes, the same products.
        packed = torch.empty(N, lib.vibe_packed_row_bytes(qtype, K), dtype=torch.uint8)
        assert lib.vibe_pack(qtype, data.data_ptr(), N, K, packed.data_ptr()) == 0
        ours = cpu_quant.pack(data.clone(), qtype, K)
        assert torch.equal(packed, ours)
        for m in (1, 5):
            out = torch.empty(m, N)
            rc = lib.vibe_qlinear(qtype | cpu_quant.PACKED, packed.data_ptr(), packed.stride(0),
                                    x.data_ptr(), K, out.data_ptr(), N, m, N, K)  # fmt: skip
            assert rc == 0
            simd = cpu_quant.qlinear(x[:m], ours, qtype | cpu_quant.PACKED, K)
            torch.testing.assert_close(out, simd, rtol=1e-5, atol=1e-5 * float(simd.abs().max()))


def test_columns_that_split_a_super_block_are_refused() -> None:
    with pytest.raises(ValueError, match="not a whole number of 256-value blocks"):
        QuantWeight.empty(4, 300, 12)
    assert not cpu_quant.kernel_runs(12, 300)


# -- a tiny Q4_K_M-like model ---------------------------------------------------------------------


@needs_compiler
def test_tiny_k_quant_gguf_runs_as_stored_and_matches_the_dequantised_model(tmp_path) -> None:
    # Q4_K attention and gate/up, Q5_K output projections, Q6_K down projections and the
    # (tied) embedding, as llama.cpp's Q4_K_M mixes them; layer 1's v is Q6_K too, so its fused
    # q|k|v matrix stacks a Q4_K part (q, k) and a Q6_K part (v), each run as stored.
    odd = {"token_embd.weight": 14, "blk.1.attn_v.weight": 14}
    for i in range(2):
        odd |= {f"blk.{i}.ffn_down.weight": 14, f"blk.{i}.attn_output.weight": 13}
    path = write_tiny_gguf(tmp_path / "tiny-k.gguf", 12, odd, dim=256, hidden=512,
                           encode=quantize_k)  # fmt: skip
    ckpt = resolve(path)
    quant = load_model(ckpt, "cpu", "float32", 64)
    plain = load_model(ckpt, "cpu", "float32", 64, dequantize=True)
    lay = quant.layers[0]
    kept = {"embed": quant.embed, "wqkv": lay.wqkv, "w13": lay.w13, "wo": lay.wo, "w2": lay.w2}
    assert {k: getattr(w, "qtype", None) for k, w in kept.items()} == {
        "embed": 14,
        "wqkv": 12,
        "w13": 12,
        "wo": 13,
        "w2": 14,
    }
    assert all(isinstance(w, QuantWeight) for w in kept.values())
    assert quant.lm_head is quant.embed
    stacked = quant.layers[1].wqkv
    assert isinstance(stacked, StackedWeight)
    assert [p.qtype for p in stacked.parts] == [12, 12, 14]
    assert cpu_decode.fused_layers(quant) is not None  # the fused decode step reads the parts
    assert isinstance(quant.layers[1].w13, QuantWeight)
    assert quant.weight_bytes() < plain.weight_bytes() / 3
    ids = torch.randint(0, 256, (12,), generator=torch.Generator().manual_seed(1)).tolist()
    assert _rel(_logits(quant, ids), _logits(plain, ids)) < 3e-2
    assert _rel(_logits(quant, ids[:1]), _logits(plain, ids[:1])) < 3e-2
    assert _greedy(quant, ids, 8) == _greedy(plain, ids, 8)
