"""Context accounting: a fast tokenizer-free token estimate, an optional mistral-common counter,
and ContextMeter (the provider's last reported usage plus an estimate of messages added since).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from vibe.messages import Message, Usage

TextCounter = Callable[[str], int]

# Fitted against mistral-common's tekken tokenizer on Python, numbered read_file output, JSON,
# Markdown and a few languages (mean ratio 1.0, 5th percentile 0.8): tekken splits digits one
# by one and punctuation into separate tokens, while whitespace runs merge.
_PER_BYTE, _PER_DIGIT, _PER_PUNCT, _PER_SPACE = 0.26, 1.25, 0.3, -0.15
_DIGITS = b"0123456789"
_PUNCT = bytes(c for c in range(33, 127) if not chr(c).isalnum())
_SPACE = b" \t\n\r"
# Role and control tokens around each message ([INST], [/INST], tool call wrappers, ids).
MESSAGE_OVERHEAD = 4
TOOL_CALL_OVERHEAD = 8


def estimate_text_tokens(text: str) -> int:
    """Estimated token count of `text` without a tokenizer (a few C-speed passes over it)."""
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")
    size = len(data)
    digits = size - len(data.translate(None, _DIGITS))
    punct = size - len(data.translate(None, _PUNCT))
    space = size - len(data.translate(None, _SPACE))
    guess = _PER_BYTE * size + _PER_DIGIT * digits + _PER_PUNCT * punct + _PER_SPACE * space
    return max(1, int(guess) + 1)


def estimate_message_tokens(message: Message, count: TextCounter = estimate_text_tokens) -> int:
    """Estimated tokens of one message as the model sees it (content, reasoning, tool calls)."""
    total = MESSAGE_OVERHEAD + count(message.content)
    if message.reasoning:
        total += count(message.reasoning)
    for call in message.tool_calls:
        total += TOOL_CALL_OVERHEAD + count(call.name) + count(call.arguments)
    for image in message.images:
        total += image_tokens(image.width, image.height)
    return total


def image_tokens(width: int, height: int) -> int:
    """Tokens of an image: one per 16x16 patch plus a row break (Pixtral's encoding; others
    are of the same order); 1,000 when the size is unknown."""
    if width <= 0 or height <= 0:
        return 1000
    return (width // 16 + 1) * (height // 16 + 1)


def estimate_tokens(messages: Iterable[Message], count: TextCounter = estimate_text_tokens) -> int:
    """Estimated tokens of a whole message list."""
    return sum(estimate_message_tokens(m, count) for m in messages)


def mistral_common_counter(tokenizer_file: str | Path) -> TextCounter | None:
    """A counter backed by mistral-common's tokenizer for `tokenizer_file` (tekken.json or a
    SentencePiece model), or None when mistral-common is not installed or cannot read it.

    Loading costs about a second, so use it where the tokenizer is at hand anyway (the local
    backend); remote models report exact prompt tokens and only the delta is estimated.
    """
    try:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    except ImportError:
        return None
    try:
        inner = MistralTokenizer.from_file(str(tokenizer_file)).instruct_tokenizer.tokenizer
    except Exception:
        # Any unreadable or unknown tokenizer file: fall back to the estimate.
        return None

    def count(text: str) -> int:
        return len(inner.encode(text, bos=False, eos=False)) if text else 0

    return count


class ContextMeter:
    """How many tokens the model-facing context holds.

    After each model call, `observe` records the provider's prompt + completion tokens, which
    cover every message up to and including the reply; `tokens` adds an estimate for the
    messages appended since (tool results, new user messages). Without a usage report (or after
    the history was replaced by compaction) it estimates everything, plus `fixed` tokens for
    what every request carries besides the messages (the tool schemas).
    """

    def __init__(self, count: TextCounter = estimate_text_tokens, fixed: int = 0) -> None:
        self._count = count
        self.fixed = fixed
        self._reported = 0
        self._covered = 0
        self._anchor: Message | None = None

    def observe(self, usage: Usage, messages: Sequence[Message]) -> None:
        """Record `usage` of the call whose reply is the last of `messages`."""
        if usage.total_tokens <= 0 or not messages:
            self.reset()
            return
        self._reported = usage.total_tokens
        self._covered = len(messages)
        self._anchor = messages[-1]

    def reset(self) -> None:
        """Forget the last report (the history was rewritten): estimate from scratch."""
        self._reported, self._covered, self._anchor = 0, 0, None

    def tokens(self, messages: Sequence[Message]) -> int:
        """Current context size of `messages`."""
        covered = self._covered
        # The report only holds while the covered prefix is unchanged (same reply object).
        if covered and covered <= len(messages) and messages[covered - 1] is self._anchor:
            return self._reported + estimate_tokens(messages[covered:], self._count)
        return self.fixed + estimate_tokens(messages, self._count)


def context_percent(used: int, threshold: int) -> int:
    return round(100 * used / threshold) if threshold > 0 else 0


def format_context(used: int, threshold: int) -> str:
    """`used/threshold tokens (pct)` as the footer and `vibe run` show it."""
    return f"{used:,}/{threshold:,} tokens ({context_percent(used, threshold)}%)"


def context_info(used: int, threshold: int) -> dict[str, int | str]:
    """The context size as `vibe run --output json|stream-json` reports it."""
    return {
        "tokens": used,
        "threshold": threshold,
        "percent": context_percent(used, threshold),
        "display": format_context(used, threshold),
    }
