"""Record and replay model exchanges. `--record FILE` wraps a provider and appends one JSON line
per model call (request, streamed chunks, error), secrets redacted; `--replay FILE` plays them
back with no network and fails clearly when the conversation diverges from the recording."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from vibe.config.secrets import redact
from vibe.errors import ProviderError, UsageError
from vibe.messages import Message, ToolCall, Usage
from vibe.providers.base import (
    ChatRequest,
    Chunk,
    FinishChunk,
    Provider,
    ReasoningChunk,
    TextChunk,
    ToolCallChunk,
    UsageChunk,
)

FORMAT = "vibe-recording/1"


def chunk_to_dict(chunk: Chunk) -> dict[str, Any]:
    match chunk:
        case TextChunk(text=t):
            return {"text": t}
        case ReasoningChunk(text=t):
            return {"reasoning": t}
        case ToolCallChunk(call=c):
            return {"tool_call": c.to_dict()}
        case UsageChunk(usage=u):
            return {"usage": u.to_dict()}
        case FinishChunk(reason=r):
            return {"finish": r}
    raise TypeError(f"not a chunk: {chunk!r}")


def chunk_from_dict(data: dict[str, Any]) -> Chunk:
    if "text" in data:
        return TextChunk(data["text"])
    if "reasoning" in data:
        return ReasoningChunk(data["reasoning"])
    if "tool_call" in data:
        return ToolCallChunk(ToolCall(**data["tool_call"]))
    if "usage" in data:
        u = data["usage"]
        return UsageChunk(Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0)))
    if "finish" in data:
        return FinishChunk(data["finish"])
    raise ValueError(f"unknown chunk {data!r}")


def request_to_dict(request: ChatRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "messages": [m.to_dict() for m in request.messages],
        "tools": [t.get("function", {}).get("name", "") for t in request.tools],
        "temperature": request.temperature,
        "thinking": request.thinking,
    }


class RecordingProvider:
    """Passes calls through to `inner`, appending each exchange to `path` as it ends."""

    def __init__(self, inner: Provider, path: Path, secrets: list[str]) -> None:
        self.inner, self.path, self.secrets = inner, path, secrets
        self.name = inner.name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"format": FORMAT, "provider": inner.name}) + "\n")
        except OSError as exc:
            raise UsageError(f"--record {path}: {exc.strerror or exc}") from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        chunks: list[dict[str, Any]] = []
        error: dict[str, Any] | None = None
        try:
            async for chunk in self.inner.stream(request):
                chunks.append(chunk_to_dict(chunk))
                yield chunk
        except ProviderError as exc:
            error = {"message": exc.detail, "status": exc.status, "class": type(exc).__name__}
            raise
        except (asyncio.CancelledError, GeneratorExit):
            error = {"message": "interrupted", "interrupted": True}
            raise
        finally:
            exchange = {"request": request_to_dict(request), "response": _merged(chunks)}
            self._write({**exchange, "error": error})

    def _write(self, exchange: dict[str, Any]) -> None:
        line = redact(json.dumps(exchange, ensure_ascii=False), self.secrets)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    async def aclose(self) -> None:
        await self.inner.aclose()


def _merged(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent text (or reasoning) pieces joined, so a secret split across chunks is still
    caught by redaction. Pieces are gathered in lists and joined once (linear time)."""
    out: list[dict[str, Any]] = []
    run: list[str] = []  # the pieces of the text/reasoning run at out[-1]
    for chunk in chunks:
        kind = next(iter(chunk))
        if out and kind in ("text", "reasoning") and kind in out[-1] and run:
            run.append(chunk[kind])
            continue
        if run:
            out[-1] = {next(iter(out[-1])): "".join(run)}
        out.append(dict(chunk))
        run = [chunk[kind]] if kind in ("text", "reasoning") else []
    if run:
        out[-1] = {next(iter(out[-1])): "".join(run)}
    return out


class ReplayProvider:
    """Answers each model call with the next recorded exchange; no network."""

    name = "replay"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"--replay {path}: {exc.strerror or exc}") from exc
        try:
            rows = [json.loads(line) for line in lines if line.strip()]
        except ValueError as exc:
            raise UsageError(f"--replay {path}: not a vibe recording ({exc})") from exc
        if not rows or rows[0].get("format") != FORMAT:
            raise UsageError(f"--replay {path}: not a vibe recording (no {FORMAT} header)")
        self.exchanges: list[dict[str, Any]] = rows[1:]
        self.played = 0

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        n = self.played
        self.played += 1
        if n >= len(self.exchanges):
            raise ProviderError(
                f"replay diverged: model call {n + 1} was made but the recording has "
                f"only {len(self.exchanges)}",
                provider=self.name,
            )
        exchange = self.exchanges[n]
        problem = diverges(exchange["request"]["messages"], request.messages)
        if problem:
            raise ProviderError(
                f"replay diverged at model call {n + 1}: {problem}", provider="replay"
            )
        finished = False
        for data in exchange["response"]:
            chunk = chunk_from_dict(data)
            if isinstance(chunk, FinishChunk):
                if finished:
                    continue  # exactly one FinishChunk per answer
                finished = True
            yield chunk
        error = exchange.get("error")
        if error:
            raise ProviderError(
                f"{error['message']} (recorded)", provider="replay", status=error.get("status")
            )
        if not finished:  # a recording made before every stream ended with one
            yield FinishChunk("")

    async def aclose(self) -> None:
        return None


def _shape(message: dict[str, Any]) -> tuple[Any, ...]:
    """What must match between the recording and the replay: roles, the user's words, the
    assistant's words and calls; not tool output, which carries timings and paths."""
    role = message["role"]
    if role == "user":
        return (role, message.get("content", ""))
    if role == "assistant":
        calls = tuple((c["name"], c["arguments"]) for c in message.get("tool_calls") or [])
        return (role, message.get("content", ""), calls)
    if role == "tool":
        return (role, message.get("tool_call_id"))
    return (role,)


def diverges(recorded: list[dict[str, Any]], actual: list[Message]) -> str | None:
    """A one-line description of the first difference, or None when they match."""
    want = [_shape(m) for m in recorded if m["role"] != "system"]
    got = [_shape(m.to_dict()) for m in actual if m.role != "system"]
    for i, (w, g) in enumerate(zip(want, got, strict=False)):
        if w != g:
            return f"message {i + 1} differs: recorded {_brief(w)}, now {_brief(g)}"
    if len(want) != len(got):
        return f"the conversation has {len(got)} messages, the recording {len(want)}"
    return None


def _brief(shape: tuple[Any, ...]) -> str:
    text = json.dumps(shape, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."
