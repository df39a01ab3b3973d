"""The Provider protocol, the request it takes and the chunks it streams back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from vibe.messages import Message, ToolCall, Usage


@dataclass(frozen=True)
class ChatRequest:
    """Everything one model call needs. `tools` are OpenAI function-tool schemas."""

    model: str
    messages: list[Message]
    tools: list[dict[str, Any]] = field(default_factory=list)
    temperature: float | None = None
    thinking: str = "off"  # off | low | medium | high
    max_tokens: int | None = None


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ReasoningChunk:
    text: str


@dataclass(frozen=True)
class ToolCallChunk:
    """A complete tool call (providers merge streamed fragments before emitting it)."""

    call: ToolCall


@dataclass(frozen=True)
class UsageChunk:
    usage: Usage


@dataclass(frozen=True)
class FinishChunk:
    """The last chunk of every answer, exactly once. `reason`: the server's finish_reason,
    lower-cased ("stop", "tool_calls", "length", "content_filter", ...); "" when the server
    sent none; "no_choices" when a 200 reply carried no choice at all."""

    reason: str


Chunk = TextChunk | ReasoningChunk | ToolCallChunk | UsageChunk | FinishChunk


class Provider(Protocol):
    """A model backend. Errors surface as vibe.errors.ProviderError and nothing else."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]: ...

    async def aclose(self) -> None: ...


@dataclass
class Completion:
    """A whole answer, gathered from a stream."""

    message: Message
    usage: Usage
    finish_reason: str = "stop"


async def collect(stream: AsyncIterator[Chunk]) -> Completion:
    """Gather a stream into one Completion (the only way to make a non-streaming call).
    `finish_reason` is the stream's FinishChunk reason ("stop" if it had none)."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    usage = Usage()
    reason = "stop"
    async for chunk in stream:
        match chunk:
            case TextChunk(text=t):
                text.append(t)
            case ReasoningChunk(text=t):
                reasoning.append(t)
            case ToolCallChunk(call=c):
                calls.append(c)
            case UsageChunk(usage=u):
                usage = u
            case FinishChunk(reason=r):
                reason = r
    message = Message(
        role="assistant",
        content="".join(text),
        reasoning="".join(reasoning) or None,
        tool_calls=calls,
    )
    return Completion(message, usage, reason)
