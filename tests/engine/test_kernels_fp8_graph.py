"""FP8 weight dequantisation / linear (CPU fallback; the `_scaled_mm` path where torch has it) and
the CUDA-graph step helper (CPU passthrough; capture and replay only with CUDA)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.kernels import fp8
from engine.kernels.cuda_graph import CudaGraphStep

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _fp8_weight(out_f: int, in_f: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(out_f, in_f, generator=gen) * 50).clamp(-448, 448).to(fp8.FP8_DTYPE)


def _dequant_loop(weight: torch.Tensor, scale: torch.Tensor, block: int) -> torch.Tensor:
    """Block by block, written independently of the vectorised code under test."""
    out = torch.empty(weight.shape)
    for i in range(scale.shape[0]):
        for j in range(scale.shape[1]):
            rows, cols = slice(i * block, (i + 1) * block), slice(j * block, (j + 1) * block)
            out[rows, cols] = weight[rows, cols].float() * scale[i, j]
    return out


def test_dequantize_per_tensor_row_and_ragged_blocks() -> None:
    weight = _fp8_weight(200, 300)  # 2 x 3 blocks of 128, the last ones ragged
    wf = weight.float()
    tensor_scale = torch.tensor([0.01])
    torch.testing.assert_close(
        fp8.dequantize_fp8(weight, tensor_scale, dtype=torch.float32), wf * 0.01
    )
    row_scale = torch.rand(200, 1) + 0.5
    torch.testing.assert_close(
        fp8.dequantize_fp8(weight, row_scale, dtype=torch.float32), wf * row_scale
    )
    block_scale = torch.rand(2, 3) + 0.5
    out = fp8.dequantize_fp8(weight, block_scale, dtype=torch.float32)
    torch.testing.assert_close(out, _dequant_loop(weight, block_scale, 128))
    assert fp8.dequantize_fp8(weight, block_scale).dtype == torch.bfloat16


def test_bad_scales_and_weights_are_rejected() -> None:
    weight = _fp8_weight(200, 300)
    with pytest.raises(ValueError, match=r"fits neither .* blocks \(2, 3\)"):
        fp8.dequantize_fp8(weight, torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"2-D torch\.float8_e4m3fn weight"):
        fp8.dequantize_fp8(weight.float(), torch.ones(1))
    with pytest.raises(ValueError, match="x has 7 features"):
        fp8.fp8_linear(torch.zeros(2, 7), weight, torch.ones(1))


@pytest.mark.parametrize("block", [(128, 128), None])
def test_quantize_round_trip_within_e4m3_precision(block: tuple[int, int] | None) -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(200, 300, generator=gen) * torch.logspace(-2, 1, 300)  # uneven columns
    wq, scale = fp8.quantize_fp8(w, block)
    assert wq.dtype == fp8.FP8_DTYPE
    assert scale.shape == ((2, 3) if block else (1,))
    back = fp8.dequantize_fp8(wq, scale, dtype=torch.float32)
    # e4m3 keeps 3 mantissa bits (relative error <= 2^-4); tiny values fall to subnormals
    # whose spacing is 2^-9 in units of the scale.
    full_scale = (
        scale.max() if block is None else _dequant_loop(torch.ones_like(w).to(wq.dtype), scale, 128)
    )
    assert ((back - w).abs() <= w.abs() / 16 + full_scale * 2**-9).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scale_shape", ["tensor", "row", "block"])
def test_fp8_linear_fallback_matches_dequantised_matmul(
    dtype: torch.dtype, scale_shape: str
) -> None:
    weight = _fp8_weight(160, 256, seed=1)
    scale = {
        "tensor": torch.tensor([0.003]),
        "row": torch.rand(160) * 0.01,
        "block": torch.rand(2, 2) * 0.01,
    }[scale_shape]
    x = torch.randn(2, 3, 256).to(dtype)
    bias = torch.randn(160)
    if scale_shape == "block":
        w_ref = _dequant_loop(weight, scale, 128)
    else:
        w_ref = weight.float() * scale.reshape(-1, 1)
    expected = F.linear(x.float(), w_ref.to(dtype).float(), bias.to(dtype).float())
    out = fp8.fp8_linear(x, weight, scale, bias)
    assert out.shape == (2, 3, 160) and out.dtype == dtype
    tol = {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 0.1, "rtol": 0.02}
    torch.testing.assert_close(out.float(), expected, **tol)


@pytest.mark.parametrize("kind", ["tensor", "row"])
def test_scaled_mm_path_close_to_reference(kind: str) -> None:
    """The GPU fast path's math, run through torch's CPU `_scaled_mm` where this build has one."""
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(64, 96, generator=gen)
    if kind == "tensor":
        wq, scale = fp8.quantize_fp8(w, None)
    else:
        scale = w.abs().amax(1) / fp8.FP8_MAX
        wq = (w / scale[:, None]).to(fp8.FP8_DTYPE)
    x = torch.randn(5, 96, generator=gen).to(torch.bfloat16)
    try:
        out = fp8._scaled_mm_linear(x, wq, scale, kind, torch.bfloat16)
    except (RuntimeError, NotImplementedError) as exc:
        pytest.skip(f"torch._scaled_mm not available on CPU here: {exc}")
    expected = x.float() @ fp8.dequantize_fp8(wq, scale, dtype=torch.float32).T
    # x is quantised to e4m3 on the fly: expect a few percent of error, not more.
    assert (out.float() - expected).norm() / expected.norm() < 0.05


def test_scaled_mm_not_used_on_cpu() -> None:
    assert not fp8.scaled_mm_supported(torch.device("cpu"))


@gpu
def test_fp8_linear_on_gpu() -> None:
    weight = _fp8_weight(256, 512).cuda()
    for scale in (torch.tensor([0.002]), torch.rand(2, 4) * 0.004):
        x = torch.randn(3, 512, device="cuda", dtype=torch.bfloat16)
        expected = x.float() @ fp8.dequantize_fp8(weight, scale.cuda(), dtype=torch.float32).T
        out = fp8.fp8_linear(x, weight, scale.cuda())
        assert (out.float() - expected).norm() / expected.norm() < 0.05


# --- CUDA graphs --------------------------------------------------------------------------


def test_graph_step_is_a_passthrough_on_cpu() -> None:
    calls = []

    def step(x: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(x)
        return x * 2, pos + 1

    runner = CudaGraphStep(step, [torch.zeros(2, 3), torch.zeros(1, dtype=torch.long)])
    assert not runner.enabled and calls == []  # nothing captured or warmed up on CPU
    x = torch.randn(2, 3)
    out, pos = runner(x, torch.tensor([4]))
    assert calls[0] is x and torch.equal(out, x * 2) and pos.tolist() == [5]
    with pytest.raises(
        ValueError, match=r"input 0 is \(3, 3\) torch.float32 on cpu, captured as \(2, 3\)"
    ):
        runner(torch.zeros(3, 3), torch.tensor([4]))
    with pytest.raises(ValueError, match="expected 2 inputs, got 1"):
        runner(x)
    with pytest.raises(RuntimeError, match="nothing captured"):
        runner.replay()
    with pytest.raises(ValueError, match="needs every example input on a CUDA device"):
        CudaGraphStep(step, [torch.zeros(2, 3)], enabled=True)


@gpu
def test_graph_step_replays_a_decode_like_step() -> None:
    from engine import kernels

    k_cache = torch.randn(256, 2, 64, device="cuda", dtype=torch.bfloat16)
    v_cache = torch.randn(256, 2, 64, device="cuda", dtype=torch.bfloat16)

    def step(q: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        attn = kernels.decode_attention(q, k_cache, v_cache, length, 0.125)
        return kernels.argmax(attn.float().reshape(-1))

    q0 = torch.randn(1, 8, 64, device="cuda", dtype=torch.bfloat16)
    runner = CudaGraphStep(step, [q0, torch.tensor([10], device="cuda")])
    assert runner.enabled
    for length in (10, 77, 256):
        q = torch.randn(1, 8, 64, device="cuda", dtype=torch.bfloat16)
        length_t = torch.tensor([length], device="cuda")
        assert int(runner(q, length_t)) == int(step(q, length_t))
