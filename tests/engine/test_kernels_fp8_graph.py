"""The CUDA-graph step helper (CPU passthrough; capture and replay only with CUDA). FP8
dequantisation is tested with the weight loader (test_weights_config.py)."""

from __future__ import annotations

import pytest
import torch

from engine.kernels.cuda_graph import CudaGraphStep

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


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
