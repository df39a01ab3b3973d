"""Values at the engine's edge: chat stream events and generation timings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's visible answer."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's reasoning (between [THINK] and [/THINK])."""

    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """A complete tool call; `id` is minted by the engine, `arguments_json` is the raw JSON text."""

    id: str
    name: str
    arguments_json: str


@dataclass(frozen=True)
class Usage:
    """Token counts of one chat() call; completion includes the end-of-sequence token."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True)
class Finished:
    """Last event of a chat() call: reason is "stop", "length" or "tool_calls"."""

    reason: str


ChatEvent = TextDelta | ReasoningDelta | ToolCallEvent | Usage | Finished


@dataclass
class Timings:
    """Timing of one generation: reused_tokens came from the KV cache, the rest were prefilled."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    prefill_s: float = 0.0
    decode_tokens: int = 0
    decode_s: float = 0.0

    @property
    def prefill_ms(self) -> float:
        return self.prefill_s * 1000

    @property
    def decode_tok_s(self) -> float:
        return self.decode_tokens / self.decode_s if self.decode_s > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "reused_tokens": self.reused_tokens,
            "prefill_ms": round(self.prefill_ms, 3),
            "decode_tokens": self.decode_tokens,
            "decode_tok_s": round(self.decode_tok_s, 3),
        }
