"""The engine's fused-kernel fast path (decode and speculative verify) against its torch path:
on CPU through the Triton interpreter (in a subprocess, which must set TRITON_INTERPRET before any
kernel module is imported), and on a GPU in bf16 with and without CUDA graphs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import fast_path, graphs
from engine.config import ModelConfig
from engine.graphs import StepRunner
from engine.kv_cache import KVCache
from engine.model import Transformer

ROOT = Path(__file__).resolve().parents[2]
ON_GPU = torch.cuda.is_available()
gpu = pytest.mark.skipif(not ON_GPU, reason="needs CUDA")


def tiny_model(
    dtype: torch.dtype, device: str, *, window: int | None = None, llama4: bool = False
) -> Transformer:
    """A random 2-layer GQA model (4 query heads, 2 KV heads) built without a checkpoint."""
    cfg = ModelConfig(
        model_type="mistral",
        vocab_size=96,
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        head_dim=16,
        hidden_dim=96,
        norm_eps=1e-5,
        rope_theta=10000.0,
        max_position_embeddings=64,
        sliding_window=window,
        llama4_beta=0.1 if llama4 else None,
        llama4_original_max=8 if llama4 else None,
    )
    model = Transformer(cfg, 64, dtype, torch.device(device))
    gen = torch.Generator().manual_seed(0)
    for name, target in model.weight_targets().items():
        dest = target.dest()
        scale = 1.0 if name.endswith("norm.weight") else 0.2
        base = 1.0 if name.endswith("norm.weight") else 0.0
        dest.copy_(base + scale * torch.randn(dest.shape, generator=gen))
    return model


def run_session(model: Transformer) -> tuple[list[torch.Tensor], KVCache, StepRunner]:
    """Prefill 20 tokens (SDPA), decode 3 single tokens, verify 4 tokens, roll back 2 and verify
    again, through the decode core's step runner (CUDA graphs where they apply): every logits
    tensor and captured layer, in order, the cache and the runner."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.cfg.vocab_size, (40,), generator=gen).tolist()
    cache = model.new_cache()
    runner = StepRunner(model, cache)
    outs: list[torch.Tensor] = []

    def step(lo: int, hi: int, all_logits: bool = False) -> None:
        out = runner.forward(ids[lo:hi], lo, all_logits=all_logits, capture=(0, 1))
        outs.extend([out.logits.float(), out.hidden.float(), out.layer_hidden[0].float()])
        outs.append(out.layer_hidden[1].float())

    step(0, 20)
    for p in range(20, 23):
        step(p, p + 1)
    step(23, 27, all_logits=True)
    cache.truncate(25)
    step(25, 29, all_logits=True)
    for p in range(29, 32):  # the same shapes again: a GPU run replays CUDA graphs here
        step(p, p + 1)
    step(32, 36, all_logits=True)
    assert cache.length == 36
    return outs, cache, runner


def max_diffs(window: int | None, llama4: bool) -> dict[str, float]:
    """Run the session on the torch path and through the Triton kernels; max abs differences."""
    results = {}
    for backend in ("torch", "triton"):
        os.environ["VIBE_KERNELS"] = backend
        model = tiny_model(torch.float32, "cpu", window=window, llama4=llama4)
        assert fast_path.wanted(model.norm, 1) == (backend == "triton")
        results[backend] = run_session(model)[:2]
    (ref_outs, ref_cache), (outs, cache) = results["torch"], results["triton"]
    valid = slice(0, cache.length)
    pairs = list(zip(ref_outs, outs, strict=True))
    # The residual stream grows to ~40 here, so states are compared relative to their scale.
    return {
        # |diff| - rtol * |ref| must stay under atol: assert_close(atol=1e-5, rtol=1e-5).
        "logits": max(((a - b).abs() - 1e-5 * a.abs()).max().item() for a, b in pairs[::4]),
        "states_rel": max(((a - b).abs().max() / a.abs().max()).item() for a, b in pairs),
        "k_cache": (ref_cache.k[:, :, valid] - cache.k[:, :, valid]).abs().max().item(),
        "v_cache": (ref_cache.v[:, :, valid] - cache.v[:, :, valid]).abs().max().item(),
        "triton_ran": float("engine.kernels.triton_attention" in sys.modules),
    }


@pytest.mark.skipif(ON_GPU, reason="on a GPU the kernels run natively (tests below)")
def test_interpreted_triton_decode_matches_the_torch_path_fp32() -> None:
    pytest.importorskip("triton")
    # Projections through F.linear on both paths (the fast path always uses it; the CPU path
    # would use the C kernel for 2-16 rows): only the Triton kernels differ.
    env = os.environ | {
        "TRITON_INTERPRET": "1",
        "PYTHONPATH": str(ROOT),
        "VIBE_CPU_KERNELS": "0",
    }
    proc = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, diffs in results.items():
        assert diffs.pop("triton_ran") == 1.0, case
        assert diffs["logits"] < 1e-5, (case, diffs)
        assert max(diffs["states_rel"], diffs["k_cache"], diffs["v_cache"]) < 1e-5, (case, diffs)


def test_cpu_default_keeps_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIBE_KERNELS", raising=False)
    model = tiny_model(torch.float32, "cpu")
    assert not fast_path.wanted(model.norm, 1)
    assert not graphs.enabled(model)
    monkeypatch.setenv("VIBE_KERNELS", "bogus")
    with pytest.raises(ValueError, match="VIBE_KERNELS"):
        fast_path.wanted(model.norm, 1)
    assert not fast_path.wanted(model.norm, fast_path.MAX_TOKENS + 1)  # prefill never asks


def test_the_cache_is_a_plain_buffer_and_graphs_belong_to_the_runner() -> None:
    model = tiny_model(torch.float32, "cpu")
    outs, cache, runner = run_session(model)
    assert not hasattr(cache, "graphs") and runner.steps == {}  # no graphs on CPU
    assert len(outs) == 4 * 10


@gpu
@pytest.mark.parametrize("window", [None, 8])
def test_gpu_bf16_decode_matches_the_torch_path(
    monkeypatch: pytest.MonkeyPatch, window: int | None
) -> None:
    runs = {}
    for backend in ("torch", "auto"):
        monkeypatch.setenv("VIBE_KERNELS", backend)
        monkeypatch.setenv(graphs.ENV_VAR, "0")
        runs[backend] = run_session(tiny_model(torch.bfloat16, "cuda", window=window))[0]
    for a, b in zip(runs["torch"], runs["auto"], strict=True):
        torch.testing.assert_close(b, a, atol=5e-2, rtol=5e-2)


@gpu
def test_gpu_cuda_graph_replay_equals_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIBE_KERNELS", "auto")
    runs = {}
    for flag in ("0", "1"):
        monkeypatch.setenv(graphs.ENV_VAR, flag)
        runs[flag] = run_session(tiny_model(torch.bfloat16, "cuda", llama4=True))
    (eager, _, _), (graphed, _, runner) = runs["0"], runs["1"]
    steps = runner.steps
    assert {key[0] for key in steps} == {1, 4}  # decode and verify were captured
    for a, b in zip(eager, graphed, strict=True):
        assert torch.equal(a, b)


if __name__ == "__main__":
    cases = {"gqa": (None, False), "window": (6, False), "llama4": (None, True)}
    print(json.dumps({name: max_diffs(*args) for name, args in cases.items()}))
