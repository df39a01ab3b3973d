"""OpenAI-compatible chat completions (vLLM, SGLang, llama.cpp, OpenAI, …): request body
and the stream parser (messages are serialised by wire.py). Mistral's API is a dialect of it (mistral.py)."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from vibe.config.schema import ModelConfig, ProviderConfig
from vibe.messages import ToolCall, Usage
from vibe.providers.base import (
    ChatRequest,
    Chunk,
    FinishChunk,
    ReasoningChunk,
    TextChunk,
    ToolCallChunk,
    UsageChunk,
)
from vibe.providers.http import HttpSettings, HttpTransport
from vibe.providers.wire import ImageStyle, to_wire_list

_ID_CHARS = string.ascii_letters + string.digits


def new_call_id() -> str:
    """A tool-call id for servers that send none (9 alphanumerics: valid for Mistral too)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(9))


@dataclass
class _PendingCall:
    """A tool call being streamed: its argument fragments are joined once, at the end."""

    index: Any
    id: str = ""
    name: str = ""
    fragments: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> str:
        return "".join(self.fragments)


class ChatStreamParser:
    """Folds chat.completion.chunk payloads into chunks; tool-call fragments merge by index.

    Reasoning is read from `reasoning_field` (and the usual `reasoning_content`/`reasoning`
    fields) and from `{"type": "thinking"}` blocks of a list-valued `delta.content`.
    `finish` ends with one FinishChunk: the server's finish_reason (lower-cased), "" when it
    sent none, "no_choices" when no payload had a choice at all. `progress` counts payloads
    that carried part of the answer (the idle timeout waits for those, not for keep-alives).
    """

    def __init__(self, reasoning_field: str = "reasoning_content") -> None:
        fields = (reasoning_field, "reasoning_content", "reasoning")
        self._reasoning_fields = tuple(dict.fromkeys(f for f in fields if f))
        self._calls: list[_PendingCall] = []
        self._finish: str | None = None
        self._saw_choice = False
        self._flushed = False
        self.progress = 0

    @property
    def complete(self) -> bool:
        return self._finish is not None

    def feed(self, payload: dict[str, Any]) -> list[Chunk]:
        out: list[Chunk] = []
        advanced = False
        for choice in payload.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 is never requested
            self._saw_choice = True
            delta = choice.get("delta") or choice.get("message") or {}
            for field_name in self._reasoning_fields:
                value = delta.get(field_name)
                if isinstance(value, str) and value:
                    out.append(ReasoningChunk(value))
                    break
            out.extend(split_content(delta.get("content")))
            for position, fragment in enumerate(delta.get("tool_calls") or []):
                advanced = self._merge(position, fragment) or advanced
            reason = choice.get("finish_reason")
            if reason:
                self._finish = str(reason).lower()
                advanced = True
        if out or advanced:
            self.progress += 1
        usage = payload.get("usage")
        if isinstance(usage, dict) and ("prompt_tokens" in usage or "completion_tokens" in usage):
            out.append(
                UsageChunk(
                    Usage(
                        int(usage.get("prompt_tokens") or 0),
                        int(usage.get("completion_tokens") or 0),
                    )
                )
            )
        return out

    def _merge(self, position: int, fragment: dict[str, Any]) -> bool:
        """Add one streamed piece of a tool call; True when it carried anything."""
        if not isinstance(fragment, dict):
            return False
        index = fragment.get("index", f"pos{position}")
        function = fragment.get("function") or {}
        frag_id = fragment.get("id") or ""
        call = next((c for c in reversed(self._calls) if c.index == index), None)
        if call is None or (frag_id and call.id and frag_id != call.id):
            call = _PendingCall(index)  # a new call (some servers reuse index 0 for each)
            self._calls.append(call)
        call.id = call.id or frag_id
        name = function.get("name") or ""
        if name and name != call.name:
            call.name += name
        args = function.get("arguments")
        if isinstance(args, dict):
            args = json.dumps(args, ensure_ascii=False)
        if isinstance(args, str) and args:
            call.fragments.append(args)
        return bool(frag_id or name or args)

    def finish(self) -> list[Chunk]:
        if self._flushed:
            return []
        self._flushed = True
        out: list[Chunk] = [
            ToolCallChunk(ToolCall(c.id or new_call_id(), c.name, c.arguments or "{}"))
            for c in self._calls
        ]
        if self._finish is not None:
            reason = self._finish
        else:
            reason = "" if self._saw_choice else "no_choices"
        out.append(FinishChunk(reason))
        return out


def split_content(content: Any) -> list[Chunk]:
    """Text and reasoning of a `content` that is a string or a list of typed blocks."""
    if isinstance(content, str):
        return [TextChunk(content)] if content else []
    out: list[Chunk] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and block.get("text"):
            out.append(TextChunk(block["text"]))
        elif block.get("type") == "thinking":
            inner = block.get("thinking")
            parts = inner if isinstance(inner, list) else [inner]
            text = "".join(
                p if isinstance(p, str) else str(p.get("text") or "")
                for p in parts
                if isinstance(p, str | dict)
            )
            if text:
                out.append(ReasoningChunk(text))
    return out


class OpenAICompatProvider:
    """A `generic` backend: OpenAI chat completions over SSE, in the openai or reasoning style."""

    path = "chat/completions"

    def __init__(
        self,
        provider: ProviderConfig,
        model: ModelConfig,
        *,
        api_key: str | None = None,
        settings: HttpSettings | None = None,
        transport: Any = None,
    ) -> None:
        self.name = provider.name
        self.provider = provider
        self.model = model
        self.http = HttpTransport(
            provider=provider.name,
            api_base=provider.api_base,
            api_key=api_key,
            headers=dict(provider.extra_headers),
            config_key=f"providers[{provider.name}]",
            api_key_env_var=provider.api_key_env_var,
            settings=settings or HttpSettings(),
            transport=transport,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        body = self.build_body(request)
        async for chunk in self.http.stream(
            self.path, body, model=request.model, new_parser=self.new_parser
        ):
            yield chunk

    async def aclose(self) -> None:
        await self.http.aclose()

    def new_parser(self) -> ChatStreamParser:
        return ChatStreamParser(self.provider.reasoning_field_name)

    def sends_reasoning_back(self, request: ChatRequest) -> bool:
        """Reasoning-style servers (vLLM serving Mistral models) take thinking blocks back."""
        return self.provider.api_style == "reasoning"

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": to_wire_list(
                request.messages,
                reasoning=self.sends_reasoning_back(request),
                images=self.image_style(),
            ),
            "stream": True,
        }
        temperature = request.temperature
        if temperature is None:
            temperature = self.model.temperature
        if temperature is not None:
            body["temperature"] = temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.tools:
            body["tools"] = request.tools
            body["tool_choice"] = "auto"
        effort = self.reasoning_effort(request.thinking)
        if effort is not None:
            body["reasoning_effort"] = effort
        options = self.stream_options()
        if options:
            body["stream_options"] = options
        return body

    def reasoning_effort(self, thinking: str) -> str | None:
        if self.provider.api_style != "reasoning" or thinking == "off":
            return None
        return thinking

    def stream_options(self) -> dict[str, Any] | None:
        return {"include_usage": True}

    def image_style(self) -> ImageStyle:
        """How images go on the wire: as OpenAI's `image_url` object; none for a model
        without `supports_images` (each image becomes a one-line note)."""
        return "openai" if self.model.supports_images else "none"
