"""An in-process Provider that plays a script of turns: the same JSON-able format as the
loopback fake server (tests/fakes/server.py), so one scenario runs at two depths.

A script is a list of turns, one per model call:
  reply:  {"text": str, "reasoning": str, "tool_calls": [{"name", "arguments", "id"?}],
           "usage": {"prompt_tokens", "completion_tokens"}, "finish_reason": str}
          (`arguments` is an object, serialised to JSON, or a raw string sent as is)
  timing: "delay": seconds before the first chunk; "slow": seconds between chunks
  faults: {"status": int} | {"drop": "before" | "middle"} | {"junk": "error"}
Like the HTTP provider, a retryable fault before any output (429/5xx, drop "before") is
retried at once with the next turn; any other fault raises ProviderError. `junk: true` only
garbles the wire, so here it is a plain reply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from vibe.errors import ProviderError
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


class ScriptedProvider:
    """Plays `script` turn by turn; `requests` keeps every ChatRequest it was sent."""

    name = "scripted"

    def __init__(self, script: Sequence[dict[str, Any]], *, chunk_size: int = 16) -> None:
        self.script = list(script)
        self.requests: list[ChatRequest] = []
        self.chunk_size = chunk_size
        self._played = 0

    @property
    def remaining(self) -> int:
        return len(self.script) - self._played

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        while True:
            turn = self._next(request)
            if turn.get("delay"):
                await asyncio.sleep(float(turn["delay"]))
            if not _retryable(turn):
                break
        _raise_fault(turn, request.model)
        slow = float(turn.get("slow") or 0)
        chunks = self._chunks(turn, request)
        cut = len(chunks) // 2 if turn.get("drop") == "middle" else None
        for i, chunk in enumerate(chunks):
            if i == cut:
                raise ProviderError("connection dropped mid-stream (scripted)", provider=self.name)
            if slow:
                await asyncio.sleep(slow)
            yield chunk

    def _next(self, request: ChatRequest) -> dict[str, Any]:
        index = self._played
        self._played += 1
        self.requests.append(request)
        if index >= len(self.script):
            raise ProviderError(
                f"script exhausted: model call {index + 1} but only {len(self.script)} scripted",
                provider=self.name,
                model=request.model,
            )
        return _check(self.script[index])

    def _chunks(self, turn: dict[str, Any], request: ChatRequest) -> list[Chunk]:
        out: list[Chunk] = []
        size = self.chunk_size
        reasoning = turn.get("reasoning") or ""
        text = turn.get("text") or ""
        out += [ReasoningChunk(reasoning[i : i + size]) for i in range(0, len(reasoning), size)]
        out += [TextChunk(text[i : i + size]) for i in range(0, len(text), size)]
        for i, spec in enumerate(turn.get("tool_calls") or []):
            args = spec.get("arguments", {})
            raw = args if isinstance(args, str) else json.dumps(args)
            call_id = spec.get("id") or f"call{i:04d}x"  # same ids as the fake server
            out.append(ToolCallChunk(ToolCall(call_id, spec["name"], raw)))
        usage = turn.get("usage")
        if usage is None:
            # Rough token counts so limits and cost have something to work with.
            prompt = sum(len(m.content) + len(m.reasoning or "") for m in request.messages) // 4
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": (len(text) + len(reasoning)) // 4,
            }
        out.append(
            UsageChunk(Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)))
        )
        default = "tool_calls" if turn.get("tool_calls") else "stop"
        reason = turn.get("finish_reason")
        out.append(FinishChunk(default if reason is None else str(reason).lower()))
        return out

    async def aclose(self) -> None:
        return None


_KEYS = {"text", "reasoning", "tool_calls", "usage", "finish_reason", "dialect", "status",
         "retry_after", "body", "headers", "drop", "slow", "junk", "delay"}  # fmt: skip


def _check(turn: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown keys so a typo in a scenario fails loudly."""
    if not isinstance(turn, dict):
        raise ValueError(f"a script turn must be an object, got {turn!r}")
    unknown = set(turn) - _KEYS
    if unknown:
        raise ValueError(f"unknown script keys {sorted(unknown)} in {turn!r}")
    return turn


_RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 529}


def _retryable(turn: dict[str, Any]) -> bool:
    return turn.get("status") in _RETRY_STATUSES or turn.get("drop") == "before"


def _raise_fault(turn: dict[str, Any], model: str) -> None:
    if "status" in turn:
        raise ProviderError(
            f"server error (scripted status {turn['status']})",
            provider="scripted",
            model=model,
            status=int(turn["status"]),
        )
    if turn.get("drop") == "before":
        raise ProviderError("connection dropped (scripted)", provider="scripted", model=model)
    if turn.get("junk") == "error":
        raise ProviderError("invalid response (scripted junk)", provider="scripted", model=model)


def load_script(path: str) -> list[dict[str, Any]]:
    """Read a script file: a JSON list of turns, or JSON Lines with one turn per line."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        return json.loads(stripped)
    return [json.loads(line) for line in text.splitlines() if line.strip()]
