"""What a server's "context length exceeded" answer says about its window, so that the answer
cap (`max_output_tokens`, 32,768 by default) never makes a small-window server refuse a prompt
that fits. vLLM, for one, rejects a request whose prompt plus `max_tokens` exceeds its
`max_model_len`, and says so with the numbers:

    This model's maximum context length is 4096 tokens. However, you requested 33768 tokens
    (1000 in the messages, 32768 in the completion). ...
    'max_tokens' is too large: 32768. This model's maximum context length is 4096 tokens and
    your request has 1000 input tokens (32768 > 4096 - 1000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WINDOW = re.compile(r"maximum context length is (\d+)", re.IGNORECASE)
_INPUT = re.compile(
    r"\((\d+) (?:tokens )?in the messages"
    r"|(?:request|prompt) (?:has|contains) (\d+) (?:input )?tokens"
    r"|(\d+) input tokens",
    re.IGNORECASE,
)
SAFETY_TOKENS = 8  # servers count a few special tokens the client cannot see


@dataclass(frozen=True)
class Overflow:
    """The server's window and the prompt's size in its tokens, where the error states them."""

    window: int | None
    prompt: int | None

    def answer_room(self) -> int | None:
        """max_tokens that fits beside the prompt, or None when the prompt itself is too long
        (or the error does not say)."""
        if self.window is None or self.prompt is None:
            return None
        room = self.window - self.prompt - SAFETY_TOKENS
        return room if room >= 16 else None


def parse_overflow(detail: str) -> Overflow:
    window = _WINDOW.search(detail)
    found = _INPUT.search(detail)
    prompt = next((int(g) for g in found.groups() if g), None) if found else None
    return Overflow(int(window.group(1)) if window else None, prompt)


def fit_cap(cap: int, window: int | None, context_tokens: int) -> int:
    """`cap`, lowered to what a learned server window leaves beside the (estimated) context."""
    if window is None:
        return cap
    return max(16, min(cap, window - context_tokens - SAFETY_TOKENS))
