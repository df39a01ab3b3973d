"""The fp16 KV cache on CPU (the fused C step reads and writes it with F16C).

Attention reads every cached key and value once a step, so the cache's bytes, not the weights',
decide a long context's speed: fp16 halves them. GGUF models keep fp16 caches, as llama.cpp
does by default; fp32 checkpoints keep fp32 ones (transformers' numbers) unless VIBE_KV_FP16=1;
VIBE_KV_FP16=0 keeps fp32 everywhere. Prefill on the torch path reads the cache back as fp32.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from engine.checkpoint import resolve
from engine.engine import load_model
from engine.kernels import cpu_decode

pytestmark = [
    pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler"),
    pytest.mark.kv_fp16,
]


def _fp16_runs(model) -> bool:
    return cpu_decode.cache_storage(model) is torch.float16


def _run(model, prompt: list[int], steps: list[int]):
    """Prefill `prompt` (torch path), then decode `steps` one at a time (the C step)."""
    cache = model.new_cache()
    out = [model.forward(torch.tensor(prompt), torch.arange(len(prompt)), cache).logits]
    for tok in steps:
        pos = torch.tensor([cache.length])
        out.append(model.forward(torch.tensor([tok]), pos, cache).logits)
    return torch.cat(out), cache


def _gguf(tmp_path):
    from tests.engine.test_quant import write_tiny_gguf

    return load_model(resolve(write_tiny_gguf(tmp_path / "t.gguf", 3)), "cpu", "float32", 64)


def test_gguf_models_keep_fp16_caches_and_fp32_checkpoints_fp32(
    tiny_dir, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("VIBE_KV_FP16", raising=False)
    gguf = _gguf(tmp_path)
    if not _fp16_runs(gguf):
        pytest.skip("the C step has no F16C here")
    cache = gguf.new_cache()
    assert cache.k.dtype == cache.v.dtype == torch.float16
    keys, values = cache.view(0, 0, 3)  # what the torch path attends over
    assert keys.dtype == values.dtype == torch.float32 and keys.shape[1] == 3
    path = resolve(tiny_dir("mistral")[1])
    checkpoint = load_model(path, "cpu", "float32", 64)
    assert checkpoint.new_cache().k.dtype == torch.float32
    assert load_model(path, "cpu", "bfloat16", 64).new_cache().k.dtype == torch.bfloat16
    monkeypatch.setenv("VIBE_KV_FP16", "1")
    assert checkpoint.new_cache().k.dtype == torch.float16
    monkeypatch.setenv("VIBE_KV_FP16", "0")
    exact = gguf.new_cache()
    assert exact.k.dtype == torch.float32 and exact.nbytes() == 2 * cache.nbytes()


@pytest.mark.parametrize("kind", ["gguf", "mistral", "llama"])
def test_fp16_caches_hold_the_rounded_keys_and_track_fp32_logits(
    kind, tiny_dir, prompt_ids, tmp_path, monkeypatch
) -> None:
    if kind == "gguf":
        monkeypatch.delenv("VIBE_KV_FP16", raising=False)  # the default
        model = _gguf(tmp_path)
    else:
        monkeypatch.setenv("VIBE_KV_FP16", "1")
        model = load_model(resolve(tiny_dir(kind)[1]), "cpu", "float32", 64)
    if not _fp16_runs(model):
        pytest.skip("the C step has no F16C here")
    prompt, steps = prompt_ids(20, seed=5), prompt_ids(6, seed=6)
    if kind == "gguf":  # a vocabulary of 256
        prompt, steps = [t % 256 for t in prompt], [t % 256 for t in steps]
    half, half_cache = _run(model, prompt, steps)
    monkeypatch.setenv("VIBE_KV_FP16", "0")
    full, full_cache = _run(model, prompt, steps)
    assert half_cache.k.dtype == torch.float16 and full_cache.k.dtype == torch.float32
    n = full_cache.length
    # Layer 0 sees the same input either way: its keys/values are the fp32 ones, rounded (the
    # prompt's by torch, the decoded tokens' by the C step's F16C).
    assert torch.equal(half_cache.k[0, :, :n], full_cache.k[0, :, :n].half())
    assert torch.equal(half_cache.v[0, :, :n], full_cache.v[0, :, :n].half())
    rel = float((half - full).norm() / full.norm())
    assert 0 < rel < 3e-3  # fp16 rounding (2^-11 relative) carried through the layers
