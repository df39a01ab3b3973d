"""The engine's model against transformers on tiny random checkpoints (fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from engine.checkpoint import resolve
from engine.engine import load_model
from engine.model import Transformer

KINDS = ["mistral", "mistral_sw", "llama", "ministral3", "mistral3"]
ATOL = 1e-4


def ours(path) -> Transformer:
    return load_model(resolve(path), device="cpu", dtype="float32", max_context=256)


def reference_logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def greedy_ours(m: Transformer, ids: list[int], n: int) -> list[int]:
    cache = m.new_cache()
    logits = m.forward(torch.tensor(ids), torch.arange(len(ids)), cache).logits
    out: list[int] = []
    for _ in range(n):
        tok = int(logits[-1].argmax())
        out.append(tok)
        pos = torch.tensor([cache.length])
        logits = m.forward(torch.tensor([tok]), pos, cache).logits
    return out


def greedy_reference(model: torch.nn.Module, ids: list[int], n: int) -> list[int]:
    model.generation_config.eos_token_id = None  # never stop early: compare n tokens
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(ids) :].tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_prefill_and_decode_logits_match(kind, tiny_dir, prompt_ids):
    ref_model, path = tiny_dir(kind)
    ids = prompt_ids(40)
    ref = reference_logits(ref_model, ids)
    m = ours(path)
    prefill = m.forward(torch.tensor(ids), torch.arange(len(ids)), m.new_cache(), all_logits=True)
    torch.testing.assert_close(prefill.logits, ref, atol=ATOL, rtol=0)
    cache = m.new_cache()
    steps = [
        m.forward(torch.tensor([t]), torch.tensor([i]), cache).logits[0] for i, t in enumerate(ids)
    ]
    torch.testing.assert_close(torch.stack(steps), ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_tokens_match_transformers_generate(kind, tiny_dir, prompt_ids):
    ref_model, path = tiny_dir(kind)
    ids = prompt_ids(12, seed=2)
    assert greedy_ours(ours(path), ids, 24) == greedy_reference(ref_model, ids, 24)


@pytest.mark.parametrize("kind", ["mistral_native", "ministral3_native"])
def test_mistral_native_checkpoint_gives_the_same_logits(kind, tiny_dir, prompt_ids):
    ref_model, path = tiny_dir(kind)
    assert (path / "params.json").is_file() and not (path / "config.json").exists()
    ids = prompt_ids(40)
    m = ours(path)
    got = m.forward(torch.tensor(ids), torch.arange(len(ids)), m.new_cache(), all_logits=True)
    torch.testing.assert_close(got.logits, reference_logits(ref_model, ids), atol=ATOL, rtol=0)


def test_sliding_window_changes_logits_beyond_the_window(tiny_dir, prompt_ids):
    # Same weights (seed) with and without a window: identical inside it, different after.
    ids = prompt_ids(24)
    full = ours(tiny_dir("mistral")[1])
    windowed = ours(tiny_dir("mistral_sw")[1])
    a = full.forward(torch.tensor(ids), torch.arange(24), full.new_cache(), all_logits=True)
    b = windowed.forward(torch.tensor(ids), torch.arange(24), windowed.new_cache(), all_logits=True)
    torch.testing.assert_close(a.logits[:8], b.logits[:8], atol=ATOL, rtol=0)
    assert (a.logits[8:] - b.logits[8:]).abs().max() > 1e-2


@pytest.mark.parametrize("kind", ["mistral_sw", "ministral3"])
def test_chunked_prefill_and_truncate_match_a_cold_prefill(kind, tiny_dir, prompt_ids):
    ids = prompt_ids(48)
    m = ours(tiny_dir(kind)[1])
    cold = m.forward(torch.tensor(ids), torch.arange(48), m.new_cache(), all_logits=True).logits
    cache = m.new_cache()
    other = prompt_ids(30, seed=9)
    m.forward(torch.tensor(ids[:20] + other), torch.arange(50), cache)
    cache.truncate(20)  # keep the shared prefix, roll back the rest
    parts = [m.forward(torch.tensor(ids[a:b]), torch.arange(a, b), cache, all_logits=True).logits
             for a, b in ((20, 33), (33, 48))]  # fmt: skip
    torch.testing.assert_close(torch.cat(parts), cold[20:], atol=ATOL, rtol=0)


def test_forward_returns_hidden_states_of_requested_layers(tiny_dir, prompt_ids):
    ref_model, path = tiny_dir("mistral")
    ids = prompt_ids(10)
    m = ours(path)
    out = m.forward(torch.tensor(ids), torch.arange(10), m.new_cache(), capture_layers=[0])
    with torch.no_grad():
        ref = ref_model(torch.tensor([ids]), output_hidden_states=True).hidden_states
    torch.testing.assert_close(out.layer_hidden[0], ref[1][0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.hidden, ref[-1][0], atol=ATOL, rtol=0)


def test_bfloat16_runs_close_to_transformers_bfloat16(tiny_dir, prompt_ids):
    import copy

    ref_model, path = tiny_dir("ministral3")
    ids = prompt_ids(24)
    ref16 = copy.deepcopy(ref_model).to(torch.bfloat16)
    m = load_model(resolve(path), device="cpu", dtype="bfloat16", max_context=64)
    got = m.forward(torch.tensor(ids), torch.arange(24), m.new_cache(), all_logits=True).logits
    assert got.dtype == torch.bfloat16
    ref = reference_logits(ref16, ids)
    scale = ref.float().abs().max()
    assert (got.float() - ref.float()).abs().max() < 0.05 * scale
