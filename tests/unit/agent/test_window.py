"""Reading a server's context-overflow error: the window and the prompt's size, as vLLM words
them in its old and new releases, and the answer room that follows."""

from __future__ import annotations

import pytest

from vibe.agent.window import SAFETY_TOKENS, fit_cap, parse_overflow

CASES = [
    (
        "This model's maximum context length is 4096 tokens. However, you requested 33768 "
        "tokens (1000 in the messages, 32768 in the completion). Please reduce the length.",
        4096,
        1000,
    ),
    (
        "'max_tokens' or 'max_completion_tokens' is too large: 32768. This model's maximum "
        "context length is 8192 tokens and your request has 1200 input tokens "
        "(32768 > 8192 - 1200).",
        8192,
        1200,
    ),
    ("This model's maximum context length is 2048 tokens.", 2048, None),
    ("prompt is too long", None, None),
]


@pytest.mark.parametrize(("detail", "window", "prompt"), CASES)
def test_the_error_text_gives_window_and_prompt(detail, window, prompt):
    overflow = parse_overflow(detail)
    assert (overflow.window, overflow.prompt) == (window, prompt)


def test_answer_room_only_when_the_prompt_itself_fits():
    assert parse_overflow(CASES[0][0]).answer_room() == 4096 - 1000 - SAFETY_TOKENS
    too_long = "maximum context length is 4096 tokens ... (4090 in the messages, 10 in the c"
    assert parse_overflow(too_long).answer_room() is None
    assert parse_overflow(CASES[2][0]).answer_room() is None


def test_fit_cap_keeps_within_a_learned_window():
    assert fit_cap(32768, None, 1000) == 32768
    assert fit_cap(32768, 4096, 1000) == 4096 - 1000 - SAFETY_TOKENS
    assert fit_cap(500, 4096, 1000) == 500
    assert fit_cap(32768, 4096, 5000) == 16  # never zero or negative
