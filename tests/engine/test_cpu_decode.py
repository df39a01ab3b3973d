"""The fused CPU decode step (engine/kernels/cpu_decode.c) against the torch layer path.

Both paths run the same matrix kernels (fp32 rows, or GGUF blocks with activations quantized
the same way) over caches of the same storage (fp32, and the default fp16: the torch path
reads it back as fp32), so their logits agree to float rounding (1e-4 relative), the
keys/values they leave in the cache agree, and greedy tokens are identical.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from engine.batch import BatchDecoder
from engine.checkpoint import resolve
from engine.engine import load_model
from engine.kernels import cpu_decode
from engine.quant import StackedWeight

pytestmark = [
    pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler"),
    pytest.mark.kv_fp16,
]
RTOL = 1e-4


@pytest.fixture(params=["fp16", "fp32"], autouse=True)
def kv(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs over fp16 caches (GGUF models' default) and over fp32 ones."""
    monkeypatch.setenv("VIBE_KV_FP16", "1" if request.param == "fp16" else "0")
    return request.param


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _torch_path(monkeypatch: pytest.MonkeyPatch, model) -> None:
    """Layers on the torch path, over caches stored as the fused path stores them (fp16)."""
    storage = cpu_decode.cache_storage(model)
    monkeypatch.setattr(cpu_decode, "fused_layers", lambda model: None)
    monkeypatch.setattr(cpu_decode, "cache_storage", lambda model: storage)


def _steps(model, prompt: list[int], tokens: list[list[int]]):
    """Prefill `prompt`, then run each group of tokens as one step; (logits per step, cache)."""
    cache = model.new_cache()
    model.forward(torch.tensor(prompt), torch.arange(len(prompt)), cache)
    out = []
    for group in tokens:
        pos = torch.arange(cache.length, cache.length + len(group))
        out.append(model.forward(torch.tensor(group), pos, cache, all_logits=True).logits)
    return out, cache


@pytest.mark.parametrize("kind", ["mistral", "mistral_sw", "llama", "ministral3"])
def test_decode_and_verify_steps_match_the_torch_path(kind, tiny_dir, prompt_ids, monkeypatch):
    model = load_model(resolve(tiny_dir(kind)[1]), "cpu", "float32", 64)
    assert cpu_decode.fused_layers(model) is not None, "the fused step should apply"
    prompt = prompt_ids(20, seed=3)
    # One token at a time, then a 4-token verify step, then a step past the sliding window.
    tokens = [[5], [9], prompt_ids(4, seed=4), [7], [11]]
    fused, fused_cache = _steps(model, prompt, tokens)
    _torch_path(monkeypatch, model)
    ref, ref_cache = _steps(model, prompt, tokens)
    for a, b in zip(fused, ref, strict=True):
        assert a.shape == b.shape
        assert _rel(a, b) < RTOL
        assert torch.equal(a.argmax(-1), b.argmax(-1))
    n = ref_cache.length
    assert fused_cache.length == n
    assert fused_cache.k.dtype == ref_cache.k.dtype
    assert _rel(fused_cache.k[:, :, :n], ref_cache.k[:, :, :n]) < RTOL
    assert _rel(fused_cache.v[:, :, :n], ref_cache.v[:, :, :n]) < RTOL


@pytest.mark.parametrize("qtype", [2, 3, 8, "mixed"])  # Q4_0, Q4_1, Q8_0, Q4_1 with Q8_0 v
def test_quantized_gguf_steps_match_the_torch_path(qtype, tmp_path, monkeypatch):
    from tests.engine.test_quant import write_tiny_gguf

    odd = {"blk.0.attn_v.weight": 8, "blk.1.ffn_up.weight": 8} if qtype == "mixed" else None
    path = write_tiny_gguf(tmp_path / "t.gguf", 3 if qtype == "mixed" else qtype, odd)
    model = load_model(resolve(path), "cpu", "float32", 64)
    if qtype == "mixed":  # fused q|k|v and gate|up stack parts of two types
        assert isinstance(model.layers[0].wqkv, StackedWeight)
        assert isinstance(model.layers[1].w13, StackedWeight)
    assert cpu_decode.fused_layers(model) is not None
    prompt = torch.randint(0, 256, (9,), generator=torch.Generator().manual_seed(2)).tolist()
    tokens = [[3], [4], [10, 11, 12], [5]]
    fused, _ = _steps(model, prompt, tokens)
    _torch_path(monkeypatch, model)
    ref, _ = _steps(model, prompt, tokens)
    for a, b in zip(fused, ref, strict=True):
        assert _rel(a, b) < RTOL


def _batch_and_alone(model, prompts: list[list[int]]):
    """Prefill each prompt in a BatchDecoder slot, step them all at once with each one's
    greedy first token; (the batch's logits row, the same sequence's logits alone) pairs."""
    batch = BatchDecoder(model, len(prompts))
    slots = [batch.acquire(p) for p in prompts]
    firsts = [int(batch.prefill(s, p)[0].argmax()) for s, p in zip(slots, prompts, strict=True)]
    logits = batch.step(slots, firsts)
    return [
        (row, _steps(model, p, [[first]])[0][0][-1])
        for row, p, first in zip(logits, prompts, firsts, strict=True)
    ]


@pytest.mark.parametrize("path", ["fused", "torch"])
def test_a_batch_step_equals_each_sequence_alone(path, tiny_dir, prompt_ids, monkeypatch):
    model = load_model(resolve(tiny_dir("mistral")[1]), "cpu", "float32", 64)
    if path == "torch":
        _torch_path(monkeypatch, model)
    for row, alone in _batch_and_alone(model, [prompt_ids(n, seed=n) for n in (5, 12, 8)]):
        assert _rel(row, alone) < RTOL


def test_models_the_step_cannot_run_take_the_torch_path(tiny_dir, monkeypatch):
    path = resolve(tiny_dir("mistral")[1])
    assert cpu_decode.fused_layers(load_model(path, "cpu", "bfloat16", 64)) is None
    monkeypatch.setenv("VIBE_CPU_KERNELS", "0")
    assert cpu_decode.fused_layers(load_model(path, "cpu", "float32", 64)) is None


@pytest.mark.parametrize("kind", ["mistral", "llama"])
def test_long_contexts_match_the_torch_path(kind, tiny_dir, prompt_ids, monkeypatch):
    # 700 cached positions: the eight-key blocks of the scores and the values' register
    # accumulation run for many blocks, then a tail.
    model = load_model(resolve(tiny_dir(kind)[1]), "cpu", "float32", 1024)
    prompt = prompt_ids(700, seed=8)
    tokens = [[5], prompt_ids(4, seed=4), [7]]
    fused, _ = _steps(model, prompt, tokens)
    _torch_path(monkeypatch, model)
    ref, _ = _steps(model, prompt, tokens)
    for a, b in zip(fused, ref, strict=True):
        assert _rel(a, b) < RTOL
        assert torch.equal(a.argmax(-1), b.argmax(-1))


def test_a_batch_of_long_and_short_sequences_equals_each_alone(tiny_dir, prompt_ids):
    model = load_model(resolve(tiny_dir("mistral")[1]), "cpu", "float32", 1024)
    for row, alone in _batch_and_alone(model, [prompt_ids(n, seed=n) for n in (600, 9, 257)]):
        assert torch.equal(row, alone)  # the same operations, whatever else runs
