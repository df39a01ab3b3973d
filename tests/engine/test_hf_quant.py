"""AWQ and GPTQ checkpoints load as stored: tiny random models packed exactly as AutoAWQ and
AutoGPTQ pack them (packers transcribed below from the reference code), repacked into GGML
blocks on CPU.

Oracle: the fake-quantized fp32 weights the packers were given, loaded as a plain checkpoint.
Tolerances: a Q4_0 repack (symmetric GPTQ) is exact; a Q4_1 repack moves each weight by at most
half an fp16 ulp of z*s (m = -z*s is stored in fp16); the whole model's logits then stay within
3% (relative L2; the kernel quantizes activations to int8 blocks, as for GGUF) and greedy tokens
agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoint import resolve
from engine.config import ModelConfig
from engine.engine import load_model
from engine.quant import QuantWeight
from scripts.engine_models import random_checkpoint
from tests.engine.test_quant import _greedy, _logits, _rel

CFG = ModelConfig(
    model_type="mistral", vocab_size=256, dim=128, n_layers=2, n_heads=4, n_kv_heads=2,
    head_dim=32, hidden_dim=256, norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=128,
)  # fmt: skip
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ORDER_MAP = [0, 2, 4, 6, 1, 3, 5, 7]  # AutoAWQ WQLinear_GEMM.from_linear


def _float_tensors(tmp: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tmp.mkdir()
    return load_file(str(random_checkpoint(tmp, CFG, seed=3) / "model.safetensors"))


def _is_linear(name: str) -> bool:
    return any(f".{p}.weight" in name for p in LINEARS)


def _grid(w: torch.Tensor, g_idx: torch.Tensor, sym: bool) -> tuple[torch.Tensor, ...]:
    """Min/max 4-bit quantization of w [out, in] by input groups `g_idx` (AutoAWQ's
    pseudo_quantize_tensor / GPTQ's Quantizer): scales fp16 and zeros [groups, out], and the
    fake-quantized fp32 matrix (exactly on the grid the packers expect)."""
    groups = int(g_idx.max()) + 1
    s = torch.empty(groups, w.shape[0])
    z = torch.empty(groups, w.shape[0])
    for g in range(groups):
        cols = w[:, g_idx == g]
        lo, hi = cols.amin(1), cols.amax(1)
        if sym:
            hi = torch.maximum(lo.abs(), hi)
            lo = -hi
        s[g] = ((hi - lo).clamp(min=1e-5) / 15).half().float()
        z[g] = torch.full_like(lo, 8.0) if sym else (-torch.round(lo / s[g])).clamp(0, 15)
    sc, zc = s[g_idx].T, z[g_idx].T  # [out, in]
    q = (torch.round(w / sc) + zc).clamp(0, 15)
    return s.half(), z.to(torch.int32), (q - zc) * sc


def _awq_pack(intweight: torch.Tensor) -> torch.Tensor:
    """AutoAWQ `WQLinear_GEMM.from_linear`: [rows, cols] ints -> int32 [rows, cols / 8]."""
    packed = torch.zeros(intweight.shape[0], intweight.shape[1] // 8, dtype=torch.int32)
    for col in range(intweight.shape[1] // 8):
        for i in range(8):
            packed[:, col] |= intweight[:, col * 8 + ORDER_MAP[i]].to(torch.int32) << (i * 4)
    return packed


def _awq_layer(w: torch.Tensor, group: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g_idx = torch.arange(w.shape[1]) // group
    scales, zeros, wq = _grid(w, g_idx, sym=False)
    scale_zeros = zeros * scales.float()  # from_linear
    intweight = torch.stack(
        [
            torch.round((wq[:, i] + scale_zeros[i // group]) / scales[i // group].float())
            for i in range(w.shape[1])
        ],
        1,
    ).to(torch.int32)  # [out, in]
    return {
        "qweight": _awq_pack(intweight.t().contiguous()),
        "qzeros": _awq_pack(zeros),
        "scales": scales,
    }, wq


def _gptq_layer(
    w: torch.Tensor, group: int, sym: bool, v1: bool, act_order: bool
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """AutoGPTQ `QuantLinear.pack` (qlinear_cuda_old / qlinear_cuda with g_idx)."""
    cols = w.shape[1]
    g_idx = torch.arange(cols) // group
    if act_order:  # desc_act: groups follow a column permutation
        perm = torch.randperm(cols, generator=torch.Generator().manual_seed(cols))
        g_idx = torch.argsort(perm) // group
    scales, zeros, wq = _grid(w, g_idx, sym)
    scale_zeros = zeros * scales.float()
    intweight = torch.stack(
        [
            torch.round((wq[:, i] + scale_zeros[g_idx[i]]) / scales[g_idx[i]].float())
            for i in range(cols)
        ],
        1,
    )
    iw = intweight.t().contiguous().numpy().astype(np.uint32)  # [in, out]
    qweight = np.zeros((iw.shape[0] // 8, iw.shape[1]), dtype=np.uint32)
    for row in range(qweight.shape[0]):
        for j in range(8):
            qweight[row] |= iw[row * 8 + j] << (4 * j)
    zs = (zeros - 1 if v1 else zeros).numpy().astype(np.uint32)
    qzeros = np.zeros((zs.shape[0], zs.shape[1] // 8), dtype=np.uint32)
    for col in range(qzeros.shape[1]):
        for j in range(8):
            qzeros[:, col] |= zs[:, col * 8 + j] << (4 * j)
    layer = {
        "qweight": torch.from_numpy(qweight.astype(np.int32)),
        "qzeros": torch.from_numpy(qzeros.astype(np.int32)),
        "scales": scales,
        "g_idx": g_idx.to(torch.int32),
    }
    return layer, wq


def _write(tmp: Path, qc: dict, pack) -> tuple[Path, Path]:
    """(packed checkpoint, the same model with its fake-quantized fp32 weights)."""
    from safetensors.torch import save_file

    tensors = _float_tensors(tmp / "src")
    packed, plain = {}, {}
    for name, t in tensors.items():
        if _is_linear(name):
            layer, wq = pack(t)
            base = name.removesuffix(".weight")
            packed |= {f"{base}.{k}": v for k, v in layer.items()}
            plain[name] = wq
        else:
            packed[name] = t.half() if t.dim() == 2 else t
            plain[name] = packed[name].float()
    config = json.loads((tmp / "src" / "config.json").read_text())
    out = {}
    for kind, sd, extra in (("packed", packed, {"quantization_config": qc}), ("plain", plain, {})):
        (tmp / kind).mkdir()
        save_file(sd, str(tmp / kind / "model.safetensors"))
        (tmp / kind / "config.json").write_text(json.dumps({**config, **extra}))
        out[kind] = tmp / kind
    return out["packed"], out["plain"]


def _matrices(model) -> list:
    lay = model.layers[0]
    return [lay.wqkv, lay.wo, lay.w13, lay.w2]


AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


def _gptq(sym: bool, v1: bool = True, desc_act: bool = False) -> dict:
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": sym, "desc_act": desc_act}
    return qc | ({} if v1 else {"checkpoint_format": "gptq_v2"})


CASES = {
    "awq": (AWQ, lambda w: _awq_layer(w, 128), 3),
    "gptq-asym-v1": (_gptq(False), lambda w: _gptq_layer(w, 128, False, True, False), 3),
    "gptq-asym-v2": (_gptq(False, v1=False), lambda w: _gptq_layer(w, 128, False, False, False), 3),
    "gptq-sym": (_gptq(True), lambda w: _gptq_layer(w, 128, True, True, False), 2),
}


@pytest.mark.parametrize("case", CASES)
def test_packed_checkpoint_loads_as_blocks_and_matches_the_fp32_model(case, tmp_path) -> None:
    qc, pack, qtype = CASES[case]
    packed, plain = _write(tmp_path, qc, pack)
    quant = load_model(resolve(packed), "cpu", "float32", 64)
    ref = load_model(resolve(plain), "cpu", "float32", 64)
    for m in _matrices(quant):
        assert isinstance(m, QuantWeight) and m.qtype == qtype
    # The blocks hold the packed weights: exact for Q4_0, within fp16 rounding of m for Q4_1.
    for q, r in zip(_matrices(quant), _matrices(ref), strict=True):
        diff = (q.dequantize() - r).abs().max()
        assert diff == 0 if qtype == 2 else diff < r.abs().max() * 2**-10
    ids = torch.randint(0, CFG.vocab_size, (12,), generator=torch.Generator().manual_seed(1))
    assert _rel(_logits(quant, ids.tolist()), _logits(ref, ids.tolist())) < 3e-2
    assert _greedy(quant, ids.tolist(), 8) == _greedy(ref, ids.tolist(), 8)


def test_act_order_groups_are_dequantised_with_a_notice(tmp_path, capsys) -> None:
    qc = _gptq(False, desc_act=True) | {"group_size": 32}
    packed, plain = _write(tmp_path, qc, lambda w: _gptq_layer(w, 32, False, True, True))
    quant = load_model(resolve(packed), "cpu", "float32", 64)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dequantised 14 GPTQ 4-bit matrices" in err
    ref = load_model(resolve(plain), "cpu", "float32", 64)
    for q, r in zip(_matrices(quant), _matrices(ref), strict=True):
        assert isinstance(q, torch.Tensor)
        torch.testing.assert_close(q, r, rtol=0, atol=1e-6)


def test_dequantize_flag_expands_awq_silently(tmp_path, capsys) -> None:
    packed, plain = _write(tmp_path, AWQ, lambda w: _awq_layer(w, 128))
    model = load_model(resolve(packed), "cpu", "float32", 64, dequantize=True)
    assert capsys.readouterr().err == ""
    ref = load_model(resolve(plain), "cpu", "float32", 64)
    for q, r in zip(_matrices(model), _matrices(ref), strict=True):
        torch.testing.assert_close(q, r, rtol=0, atol=1e-6)


def test_unsupported_packings_are_one_line_errors(tmp_path) -> None:
    from engine.errors import EngineError
    from engine.hf_quant import packed_format

    with pytest.raises(EngineError, match="AWQ gemv"):
        packed_format({"quantization_config": AWQ | {"version": "gemv"}})
    with pytest.raises(EngineError, match="GPTQ 3-bit"):
        packed_format({"quantization_config": _gptq(True) | {"bits": 3}})
    assert packed_format({"quantization_config": {"quant_method": "fp8"}}) is None
    packed, _ = _write(tmp_path, AWQ, lambda w: _awq_layer(w, 128))
    with pytest.raises(EngineError, match="AWQ 4-bit checkpoints run with --tp 1"):
        load_model(resolve(packed), "cpu", "float32", 64, tp=2)


def _gpu_int4_model(packed: Path, device: str):
    """The model as `load_model` builds it on a GPU: the checkpoint's GPU kinds kept as stored
    (built on `device`; the classes also run on CPU, through their torch reference)."""
    from engine.model import Transformer
    from engine.weights import load_into

    ckpt = resolve(packed)
    plan = ckpt.gpu_kinds()
    model = Transformer(ckpt.config, 64, torch.float32, torch.device(device), quant=plan)
    load_into(model, ckpt.tensors(set(model.weight_targets()), (), keep_gpu=set(plan)))
    return model, plan


@pytest.mark.parametrize("case", ["awq", "gptq-asym-v1", "gptq-sym"])
def test_packed_layers_load_as_gpu_int4_matrices_as_stored(case, tmp_path) -> None:
    from engine.gpu_quant import Int4Weight

    qc, pack, _ = CASES[case]
    packed, plain = _write(tmp_path, qc, pack)
    model, plan = _gpu_int4_model(packed, "cpu")
    assert set(plan.values()) == {"int4-g128"} and len(plan) == 14
    ref = load_model(resolve(plain), "cpu", "float32", 64)
    for q, r in zip(_matrices(model), _matrices(ref), strict=True):
        assert isinstance(q, Int4Weight) and q.group == 128
        # (q - z) s = q s + m with m = -z s rounded to fp16: the only change.
        assert (q.dequantize() - r).abs().max() < r.abs().max() * 2**-10
    ids = torch.randint(0, CFG.vocab_size, (12,), generator=torch.Generator().manual_seed(1))
    assert _rel(_logits(model, ids.tolist()), _logits(ref, ids.tolist())) < 1e-2


def test_act_order_layers_are_not_gpu_int4(tmp_path) -> None:
    qc = _gptq(False, desc_act=True) | {"group_size": 32}
    packed, _ = _write(tmp_path, qc, lambda w: _gptq_layer(w, 32, False, True, True))
    assert resolve(packed).gpu_kinds() == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_awq_runs_as_int4_on_the_gpu(tmp_path) -> None:
    from engine.gpu_quant import Int4Weight

    packed, plain = _write(tmp_path, AWQ, lambda w: _awq_layer(w, 128))
    model = load_model(resolve(packed), "cuda", "bfloat16", 64)
    assert all(isinstance(m, Int4Weight) for m in _matrices(model))
    ref = load_model(resolve(plain), "cuda", "bfloat16", 64)
    ids = torch.randint(0, CFG.vocab_size, (12,), generator=torch.Generator().manual_seed(1))
    assert _rel(_logits(model, ids.tolist()).float(), _logits(ref, ids.tolist()).float()) < 3e-2
