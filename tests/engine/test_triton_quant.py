"""GPU weight-only quantization (`engine.gpu_quant`, `engine.kernels.triton_quant`): the torch
references against hand-packed layouts, the Triton kernel against the references (under
TRITON_INTERPRET=1 on CPU), the matrices as the loader fills them, FP8 checkpoints kept as stored,
and tiny models whose matrices are quantized against the fp32 model."""

from __future__ import annotations

import importlib
import os
import shutil

import pytest
import torch
import torch.nn.functional as F

ON_GPU = torch.cuda.is_available()
if not ON_GPU:  # before the first engine.kernels.triton_* import (see test_kernels.py)
    os.environ["TRITON_INTERPRET"] = "1"

from engine import gpu_quant as gq  # noqa: E402
from engine.checkpoint import resolve  # noqa: E402
from engine.engine import load_model  # noqa: E402
from engine.kernels import reference as ref  # noqa: E402
from engine.model import Transformer  # noqa: E402
from engine.parallel.shard import TPContext  # noqa: E402
from engine.weights import dequantize_fp8, load_into  # noqa: E402

DEVICE = "cuda" if ON_GPU else "cpu"
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if ON_GPU else [])
KINDS = [(gq.Int8Weight, None), (gq.Int4Weight, 32), (gq.Int4Weight, 64), (gq.Fp8Weight, None),
         (gq.Fp8Weight, 128)]  # fmt: skip
KIND_IDS = ["int8", "int4-g32", "int4-g64", "fp8-row", "fp8-b128"]


@pytest.fixture
def use_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route `.linear` of steps up to 16 rows to the Triton kernel (interpreted on CPU)."""
    pytest.importorskip("triton")
    from triton.runtime.interpreter import InterpretedFunction

    monkeypatch.setenv("VIBE_KERNELS", "triton")
    module = importlib.import_module("engine.kernels.triton_quant")
    if not ON_GPU and not isinstance(module._quant_linear_kernel, InterpretedFunction):
        importlib.reload(module)


# --- references and quantizers -------------------------------------------------------------


def test_reference_int4_layout_is_two_nibbles_per_byte_low_first() -> None:
    q = torch.tensor([[1, 2, 15, 0, 15, 8, 0, 4]], dtype=torch.uint8)  # each group spans 0..15
    packed = torch.tensor([[1 | 2 << 4, 15 | 0 << 4, 15 | 8 << 4, 0 | 4 << 4]], dtype=torch.uint8)
    scale = torch.tensor([[0.5, 2.0]], dtype=torch.float16)  # groups of 4 values
    mins = torch.tensor([[-1.0, 0.25]], dtype=torch.float16)
    got = ref.dequantize_weight(packed, scale, mins, 4, 8, "int4")
    expected = q.float() * torch.tensor([0.5] * 4 + [2.0] * 4) + torch.tensor(
        [-1.0] * 4 + [0.25] * 4
    )
    assert torch.equal(got, expected)
    assert torch.equal(gq.Int4Weight.from_float(expected, 4).data, packed)


@pytest.mark.parametrize(("cls", "group"), KINDS, ids=KIND_IDS)
def test_quantizers_error_bounds_and_exact_grids(cls: type, group: int | None) -> None:
    torch.manual_seed(0)
    w = torch.randn(24, 256)
    q = cls.from_float(w, group)
    assert q.shape == (24, 256) and q.dim() == 2
    err = (q.dequantize() - w).abs()
    if cls is gq.Int8Weight:  # half a step of max|w| / 127 per row
        assert (err <= w.abs().amax(1, keepdim=True) / 254 * 1.001).all()
    elif cls is gq.Int4Weight:  # half a step of (max - min) / 15 per group (+ fp16 scales)
        g = w.reshape(24, -1, group)
        step = (g.amax(-1) - g.amin(-1)) / 15
        assert (err.reshape(24, -1, group) <= step[..., None] * 0.51 + 2e-3).all()
    else:  # e4m3: 3 mantissa bits, relative error <= 1/16 above the smallest normal
        assert (err <= w.abs() / 16 + 1e-6 * w.abs().amax()).all()
    # Values already on the grid come back exactly.
    again = cls.from_float(q.dequantize(), group)
    torch.testing.assert_close(again.dequantize(), q.dequantize(), atol=1e-6, rtol=1e-3)


def test_bytes_and_group_checks() -> None:
    assert gq.empty("int8", 64, 256, "cpu").nbytes() == 64 * 256 + 64 * 4
    assert gq.empty("int4", 64, 256, "cpu").nbytes() == 64 * 128 + 2 * 64 * 8 * 2
    assert gq.empty("fp8-b128", 64, 300, "cpu").scale.shape == (64, 3)  # a partial last block
    with pytest.raises(
        ValueError, match="a matrix of 48 columns would split quantization groups of 32"
    ):
        gq.empty("int4", 8, 48, "cpu")
    assert gq.parse_kind("int4") == (gq.Int4Weight, 32)
    assert gq.parse_kind("fp8-b128") == (gq.Fp8Weight, 128)
    with pytest.raises(ValueError, match="unknown quantized kind 'int3'"):
        gq.empty("int3", 8, 48, "cpu")
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        gq.from_float(torch.zeros(2, 32), 2)


def test_tensor_parallel_shard_splitting_int4_groups_is_a_one_line_error(tiny_dir) -> None:
    _, path = tiny_dir("mistral")
    cfg = resolve(path).config  # FFN width 96: a 2-way shard's down_proj has 48 columns
    plan = gq.quant_plan(cfg, "int4", group=32)
    with pytest.raises(ValueError, match="48 columns would split quantization groups of 32") as exc:
        Transformer(cfg, 16, torch.float32, torch.device("cpu"), TPContext(0, 2), quant=plan)
    assert "\n" not in str(exc.value)
    model = Transformer(cfg, 16, torch.float32, torch.device("cpu"), quant=plan)  # 96 columns
    assert model.layers[0].w2.scale.shape == (64, 3)


# --- the Triton kernel against the references ----------------------------------------------


@pytest.mark.parametrize(("cls", "group"), KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 5, 16])
def test_triton_kernel_matches_reference(
    use_triton: None, cls: type, group: int | None, dtype: torch.dtype, rows: int
) -> None:
    torch.manual_seed(rows)
    K = 320  # not a multiple of 128: FP8 blocks end in a partial one; N = 72 is not one of 32
    w = cls.from_float(torch.randn(72, K, device=DEVICE), group)
    x = torch.randn(rows, 2 * K, device=DEVICE).to(dtype)[:, ::2]  # strided activations
    out = w.linear(x)
    assert out.dtype == dtype and out.shape == (rows, 72)
    expected = ref.quant_linear(x.float(), *w._args())
    tol = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 1e-1}[dtype]
    torch.testing.assert_close(out.float(), expected, atol=tol * expected.abs().max(), rtol=0)
    exact = F.linear(x.float(), w.dequantize())  # the same as F.linear on dequantised weights
    torch.testing.assert_close(out.float(), exact, atol=tol * exact.abs().max(), rtol=0)


def test_triton_kernel_on_row_views_of_a_fused_matrix(use_triton: None) -> None:
    torch.manual_seed(0)
    fused = gq.Int4Weight.from_float(torch.randn(96, 128, device=DEVICE), 32)
    part = fused[40:72]
    x = torch.randn(2, 3, 128, device=DEVICE)  # leading dims kept
    out = part.linear(x)
    assert out.shape == (2, 3, 32)
    torch.testing.assert_close(out, fused.linear(x)[..., 40:72], atol=1e-4, rtol=1e-4)


# --- matrices as the loader fills them -----------------------------------------------------


@pytest.mark.parametrize("kind", ["int8", "int4", "int4-g64", "fp8", "fp8-b128"], ids=str)
def test_row_views_are_filled_by_copy(kind: str) -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(64, 128), torch.randn(32, 128), torch.randn(32, 128)
    fused = gq.empty(kind, 128, 128, "cpu")
    for (r0, r1), t in zip([(0, 64), (64, 96), (96, 128)], [q, k, v], strict=True):
        fused[r0:r1].copy_(t)  # what load_into does with WeightTarget.dest()
    cls, group = gq.parse_kind(kind)
    whole = cls.from_float(torch.cat([q, k, v]), group)
    assert torch.equal(fused.dequantize(), whole.dequantize())
    other = gq.empty(kind, 128, 128, "cpu")
    other[64:96].copy_(fused[64:96])  # a matrix of the same kind: copied as stored
    assert torch.equal(other[64:96].dequantize(), whole[64:96].dequantize())
    assert torch.equal(
        fused.rows(torch.tensor([3, 70]), torch.float32), whole.dequantize()[[3, 70]]
    )
    picked = fused[torch.tensor([5, 1])].contiguous()  # EAGLE's reduced-vocabulary head
    assert torch.equal(picked.dequantize(), whole.dequantize()[[5, 1]])
    assert not fused[:8].zero_().dequantize().any()  # TP's padding rows of a vocabulary shard


def test_fp8_row_scaled_piece_goes_exactly_into_a_block_scaled_matrix() -> None:
    torch.manual_seed(0)
    piece = gq.Fp8Weight.from_float(torch.randn(8, 256))  # one scale per row
    dest = gq.empty("fp8-b128", 8, 256, "cpu")
    dest.copy_(piece)
    assert dest.scale.shape == (8, 2) and torch.equal(dest.dequantize(), piece.dequantize())


@pytest.mark.parametrize(
    ("scale", "blocks"),
    [
        (torch.tensor(0.5), False),  # per tensor
        (torch.rand(260) + 0.5, False),  # per row
        (torch.rand(3, 3) + 0.5, True),  # 128x128 blocks (partial last ones)
        (torch.rand(3, 1) + 0.5, True),  # row blocks only: one scale across each row
    ],
    ids=["tensor", "row", "block", "row-block"],
)
def test_fp8_checkpoint_parts_kept_as_stored_dequantise_like_the_loader(scale, blocks) -> None:
    q = torch.randn(260, 300).to(torch.float8_e4m3fn)
    whole = gq.fp8_stored(q, scale)
    assert whole is not None and torch.equal(whole.dequantize(), dequantize_fp8(q, scale))
    block_cols = 128 if scale.shape[-1:] == (3,) else 300
    assert whole.group == block_cols
    parts = [((60, 0), q[60:259]), ((0, 128), q[:, 128:300]), ((0, 100), q[:, 100:250])]
    for at, part in parts:  # rows; columns from a block edge; columns from inside a block
        kept = gq.fp8_stored(part, scale, tuple(q.shape), at)
        expected = dequantize_fp8(part, scale, tuple(q.shape), at)
        if blocks and at[1] % block_cols:
            assert kept is None  # the loader dequantises it instead
            continue
        assert kept is not None and torch.equal(kept.dequantize(), expected)


def test_scaled_mm_math_on_cpu() -> None:
    """The `_scaled_mm` call (row-wise scales, activations quantised per row) against the
    dequantised weights; CPU torch implements `_scaled_mm` too, so the math is checked here."""
    torch.manual_seed(0)
    w = gq.Fp8Weight.from_float(torch.randn(48, 64))
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    out = gq.scaled_mm_linear(x, w.data, w.scale)
    expected = F.linear(x.float(), w.dequantize())
    assert out.dtype == torch.bfloat16 and out.shape == (3, 48)
    torch.testing.assert_close(out.float(), expected, atol=0.08 * expected.abs().max(), rtol=0)


@pytest.mark.skipif(
    not ON_GPU or torch.cuda.get_device_capability() < (8, 9), reason="needs CUDA sm_89+"
)
def test_fp8_linear_runs_scaled_mm_on_the_gpu() -> None:
    torch.manual_seed(0)
    w = gq.Fp8Weight.from_float(torch.randn(256, 512, device="cuda"))
    x = torch.randn(4, 512, device="cuda", dtype=torch.bfloat16)
    assert gq._native_fp8(x.device)
    out = w.linear(x)
    torch.testing.assert_close(out, gq.scaled_mm_linear(x, w.data, w.scale))
    expected = F.linear(x.float(), w.dequantize())
    torch.testing.assert_close(out.float(), expected, atol=0.08 * expected.abs().max(), rtol=0)


# --- tiny models ---------------------------------------------------------------------------


def _forward(model: Transformer, ids: list[int]) -> torch.Tensor:
    cache = model.new_cache()
    return model.forward(torch.tensor(ids), torch.arange(len(ids)), cache, all_logits=True).logits


def _quantized(path, plan: dict[str, str], keep_fp8: bool = False) -> Transformer:
    ckpt = resolve(path)
    model = Transformer(ckpt.config, 64, torch.float32, torch.device("cpu"), quant=plan)
    wanted = set(model.weight_targets())
    keep = set(plan) if keep_fp8 else ()
    load_into(model, ckpt.tensors(wanted, (), keep_gpu=keep))
    return model


@pytest.mark.skipif(not ON_GPU, reason="needs CUDA")
@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_load_model_quantizes_on_the_gpu(tiny_dir, prompt_ids, scheme: str) -> None:
    _, path = tiny_dir("mistral")
    model = load_model(resolve(path), "cuda", "bfloat16", 64, quantize=scheme)
    assert isinstance(model.layers[0].wqkv, gq.GPU_KINDS[scheme])
    ref = load_model(resolve(path), "cuda", "bfloat16", 64)
    ids = prompt_ids(12)
    got, want = _forward(model, ids).float(), _forward(ref, ids).float()
    assert ((got - want).abs().max() / want.abs().max()).item() < MODEL_TOL[scheme]


# Stated tolerance: max |logit difference| over the largest |logit|, on the peaky tiny models.
MODEL_TOL = {"int8": 0.03, "int4": 0.4}


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_tiny_model_with_quantized_matrices_tracks_fp32(tiny_dir, prompt_ids, scheme: str) -> None:
    _, path = tiny_dir("mistral")
    plan = gq.quant_plan(resolve(path).config, scheme)
    model = _quantized(path, plan)
    assert isinstance(model.layers[0].wqkv, gq.GPU_KINDS[scheme])
    assert isinstance(model.lm_head, gq.Int8Weight) and isinstance(model.embed, torch.Tensor)
    ids = prompt_ids(12)
    got = _forward(model, ids)
    # The dequantise-then-fp32 path: the same model with every matrix expanded to floats.
    expanded = load_model(resolve(path), "cpu", "float32", 64)
    for mine, theirs in zip(_matrices(model), _matrices(expanded), strict=True):
        theirs.copy_(mine.dequantize() if isinstance(mine, gq.QuantMatrix) else mine)
    torch.testing.assert_close(got, _forward(expanded, ids), atol=1e-4, rtol=1e-4)
    # The quantization error itself, against the fp32 checkpoint.
    ref_logits = _forward(load_model(resolve(path), "cpu", "float32", 64), ids)
    rel = ((got - ref_logits).abs().max() / ref_logits.abs().max()).item()
    assert rel < MODEL_TOL[scheme], rel
    if scheme == "int8":  # int4 noise on random weights moves near-tied argmaxes
        assert torch.equal(got.argmax(-1), ref_logits.argmax(-1))


def _matrices(model: Transformer) -> list:
    return [model.lm_head] + [
        getattr(lay, n) for lay in model.layers for n in ("wqkv", "wo", "w13", "w2")
    ]


def test_tiny_model_decode_step_through_the_kernels(tiny_dir, prompt_ids, use_triton) -> None:
    """A decode step on the Triton path (norm, rotary, attention and the quantized matmuls
    interpreted) gives the reference path's logits."""
    _, path = tiny_dir("mistral")
    model = _quantized(path, gq.quant_plan(resolve(path).config, "int4"))
    ids = prompt_ids(6)
    cache = model.new_cache()
    model.forward(torch.tensor(ids[:5]), torch.arange(5), cache)
    triton_step = model.forward(torch.tensor(ids[5:]), torch.tensor([5]), cache).logits
    os.environ["VIBE_KERNELS"] = "torch"  # monkeypatch restores it
    torch.testing.assert_close(triton_step, _forward(model, ids)[-1:], atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("kind", ["mistral", "mistral_native"])
@pytest.mark.parametrize("blocks", [False, True], ids=["row-scales", "block-scales"])
def test_fp8_checkpoint_kept_as_stored(tiny_dir, tmp_path, prompt_ids, kind, blocks) -> None:
    from safetensors.torch import load_file, save_file

    _, path = tiny_dir(kind)
    shutil.copytree(path, tmp_path / "fp8")
    (file,) = [f.name for f in path.glob("*.safetensors")]
    tensors = load_file(str(path / file))
    for name in [n for n in tensors if n.endswith(".weight") and tensors[n].dim() == 2]:
        if "embed" in name or "tok_embeddings" in name:
            continue
        w = tensors[name]
        if blocks:  # 32x32 blocks (128x128 in real checkpoints): expanded per row at load
            scale = torch.rand(-(-w.shape[0] // 32), -(-w.shape[1] // 32)) * 0.01 + 0.01
            full = scale.repeat_interleave(32, 0).repeat_interleave(32, 1)
            full = full[: w.shape[0], : w.shape[1]]
        else:
            scale = w.abs().amax(1) / 448
            full = scale[:, None]
        tensors[name] = (w / full).clamp(-448, 448).to(torch.float8_e4m3fn)
        tensors[name.replace(".weight", ".weight_scale_inv")] = scale
    save_file(tensors, str(tmp_path / "fp8" / file))
    ckpt = resolve(tmp_path / "fp8")
    plan = gq.fp8_plan(ckpt.files, ckpt.kind == "native")
    assert plan and set(plan.values()) == {"fp8-b32" if blocks else "fp8"}
    model = _quantized(tmp_path / "fp8", plan, keep_fp8=True)
    assert isinstance(model.layers[1].w13, gq.Fp8Weight)
    ids = prompt_ids(10)
    dequantised = load_model(ckpt, "cpu", "float32", 64)  # today's path: FP8 expanded at load
    torch.testing.assert_close(
        _forward(model, ids), _forward(dequantised, ids), atol=1e-4, rtol=1e-4
    )
