"""Engine API on a tiny Mistral checkpoint with a real Tekken tokenizer: chat, reuse, errors."""

from __future__ import annotations

import pytest
import torch

from engine import Engine, Finished, TextDelta, Usage
from engine.errors import (
    BadRequestError,
    ContextLengthError,
    EngineBusyError,
    ModelNotFoundError,
)

MESSAGES = [
    {"role": "system", "content": "You are vibe."},
    {"role": "user", "content": "Hello there, please list the files."},
]


@pytest.fixture(scope="module")
def chat_path(tiny_dir):
    return tiny_dir("mistral_chat")[1]


@pytest.fixture(scope="module")
def eng(chat_path):
    e = Engine.load(chat_path, device="cpu", dtype="float32", max_context=256)
    yield e
    e.close()


def test_chat_streams_events_and_ends_with_usage_and_finished(eng):
    events = list(eng.chat(MESSAGES, max_tokens=6, temperature=0))
    assert isinstance(events[-1], Finished) and events[-1].reason in (
        "stop",
        "length",
        "tool_calls",
    )
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.prompt_tokens == len(eng.tokenizer.encode_chat(MESSAGES, None, None))
    assert 1 <= usage.completion_tokens <= 6


def test_greedy_generate_matches_the_reference_model(eng, tiny_dir):
    ref_model = tiny_dir("mistral_chat")[0]
    prompt = eng.tokenizer.encode_chat(MESSAGES, None, None)
    ours = list(eng.generate(prompt, 8, stop_at_eos=False))
    ref_model.generation_config.eos_token_id = None
    with torch.no_grad():
        ref = ref_model.generate(
            torch.tensor([prompt]), max_new_tokens=8, do_sample=False, pad_token_id=0
        )
    assert ours == ref[0, len(prompt) :].tolist()
    assert eng.last_timings.decode_tokens == 8 and eng.last_timings.prefill_s > 0


def test_seeded_sampling_is_reproducible(eng):
    prompt = eng.tokenizer.encode_chat(MESSAGES, None, None)
    runs = [
        list(eng.generate(prompt, 10, temperature=1.0, top_p=0.95, seed=s, stop_at_eos=False))
        for s in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_second_turn_reuses_the_cache_and_matches_a_cold_run(chat_path):
    warm = Engine.load(chat_path, device="cpu", dtype="float32", max_context=256)
    first = list(warm.chat(MESSAGES, max_tokens=5))
    answer = "".join(e.text for e in first if isinstance(e, TextDelta))
    turn2 = [
        *MESSAGES,
        {"role": "assistant", "content": answer or "ok"},
        {"role": "user", "content": "And now?"},
    ]
    warm_events = list(warm.chat(turn2, max_tokens=8))
    cached = warm_events[-2].cached_tokens
    assert cached >= len(warm.tokenizer.encode_chat(MESSAGES, None, None)) - 1

    cold = Engine.load(chat_path, device="cpu", dtype="float32", max_context=256)
    cold_events = list(cold.chat(turn2, max_tokens=8))
    assert cold_events[-2].cached_tokens == 0
    assert warm_events[:-2] == cold_events[:-2]
    # Token level: a rolled-back cache (shorter prompt after a longer one) is still exact.
    prompt = warm.tokenizer.encode_chat(turn2, None, None)
    assert list(warm.generate(prompt[:-3], 6, stop_at_eos=False)) == list(
        cold.generate(prompt[:-3], 6, stop_at_eos=False)
    )
    assert warm.last_timings.reused_tokens == len(prompt) - 4


def test_prompt_longer_than_the_context_is_rejected(chat_path):
    small = Engine.load(chat_path, device="cpu", dtype="float32", max_context=16)
    with pytest.raises(ContextLengthError, match="context holds 16"):
        list(small.chat(MESSAGES))


def test_max_tokens_is_clipped_to_the_context(chat_path):
    small = Engine.load(chat_path, device="cpu", dtype="float32", max_context=40)
    prompt = small.tokenizer.encode_chat(MESSAGES, None, None)
    assert len(list(small.generate(prompt, 1000, stop_at_eos=False))) == 40 - len(prompt)


def test_bad_inputs_are_engine_errors(eng, chat_path, tmp_path):
    with pytest.raises(BadRequestError):
        list(eng.generate([], 3))
    with pytest.raises(BadRequestError, match="token ids"):
        list(eng.generate([1, 10**9], 3))
    with pytest.raises(BadRequestError, match="temperature"):
        list(eng.generate([1, 2], 3, temperature=-1))
    with pytest.raises(BadRequestError, match="tensor_parallel_size"):
        Engine.load(chat_path, tp=0)
    with pytest.raises(ModelNotFoundError, match="holds no EAGLE head"):
        Engine.load(chat_path, draft=str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        Engine.load(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="holds no checkpoint"):
        Engine.load(tmp_path)


def test_a_second_concurrent_generation_is_refused(eng):
    first = eng.generate([1, 5, 6], 4)
    next(first)
    with pytest.raises(EngineBusyError):
        next(eng.generate([1, 5, 6], 4))
    first.close()
    assert len(list(eng.generate([1, 5, 6], 2, stop_at_eos=False))) == 2
