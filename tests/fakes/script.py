"""The scenario format shared by the loopback fake server and the in-process scripted provider,
and its rendering into each wire dialect (mistral, openai, reasoning). See server.py for the
format itself; everything here is pure data -> data."""

from __future__ import annotations

import json
import re
import time
from typing import Any

DIALECTS = ("mistral", "openai", "reasoning")
REPLY_KEYS = {"text", "reasoning", "tool_calls", "usage", "finish_reason", "dialect"}
FAULT_KEYS = {"status", "retry_after", "body", "headers", "drop", "slow", "junk", "delay"}


def check_turn(turn: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown keys early so a typo in a scenario fails loudly, not silently."""
    if not isinstance(turn, dict):
        raise ValueError(f"a script turn must be an object, got {turn!r}")
    unknown = set(turn) - REPLY_KEYS - FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown script keys {sorted(unknown)} in {turn!r}")
    if turn.get("drop") not in (None, "before", "middle"):
        raise ValueError(f"drop must be 'before' or 'middle', got {turn['drop']!r}")
    return turn


def pieces(text: str) -> list[str]:
    """Split text into word-sized stream pieces (whitespace kept, so joining is lossless)."""
    return re.findall(r"\s*\S+\s*|\s+", text) if text else []


def arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})


def tool_calls(turn: dict[str, Any]) -> list[dict[str, Any]]:
    """The turn's tool calls with ids and JSON-text arguments."""
    out = []
    for i, call in enumerate(turn.get("tool_calls") or []):
        out.append(
            {
                "id": call.get("id") or f"call{i:04d}x",
                "name": call["name"],
                "arguments": arguments_text(call.get("arguments")),
            }
        )
    return out


def usage(turn: dict[str, Any], request: dict[str, Any], n_pieces: int) -> dict[str, int]:
    if turn.get("usage"):
        u = dict(turn["usage"])
    else:  # a rough but deterministic count, so token budgets can be exercised
        u = {
            "prompt_tokens": max(1, len(json.dumps(request.get("messages", []))) // 4),
            "completion_tokens": max(1, n_pieces),
        }
    u.setdefault("total_tokens", u.get("prompt_tokens", 0) + u.get("completion_tokens", 0))
    return u


def finish_reason(turn: dict[str, Any]) -> str:
    return turn.get("finish_reason") or ("tool_calls" if turn.get("tool_calls") else "stop")


def stream_payloads(
    turn: dict[str, Any], request: dict[str, Any], dialect: str, reasoning_field: str
) -> list[dict[str, Any]]:
    """The `data:` payloads of a streamed reply, without the final [DONE]."""
    head = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**head, "choices": [choice], **extra}

    reasoning = pieces(turn.get("reasoning") or "")
    text = pieces(turn.get("text") or "")
    calls = tool_calls(turn)
    out = [chunk({"role": "assistant", "content": ""})]
    for piece in reasoning:
        if dialect == "mistral":
            block = {"type": "thinking", "thinking": [{"type": "text", "text": piece}]}
            out.append(chunk({"content": [block]}))
        else:
            field = "reasoning" if dialect == "openai" else reasoning_field
            out.append(chunk({field: piece}))
    for piece in text:
        content: Any = piece
        if dialect == "mistral" and reasoning:
            content = [{"type": "text", "text": piece}]
        out.append(chunk({"content": content}))
    for i, call in enumerate(calls):
        if dialect == "mistral":  # Mistral sends each call whole
            fn = {"name": call["name"], "arguments": call["arguments"]}
            out.append(chunk({"tool_calls": [{"id": call["id"], "index": i, "function": fn}]}))
            continue
        first = {"index": i, "id": call["id"], "type": "function"}
        out.append(chunk({"tool_calls": [{**first, "function": {"name": call["name"]}}]}))
        args = call["arguments"]
        third = max(1, len(args) // 3)
        for j in range(0, len(args), third):
            frag = {"index": i, "function": {"arguments": args[j : j + third]}}
            out.append(chunk({"tool_calls": [frag]}))
    used = usage(turn, request, len(reasoning) + len(text) + len(calls))
    if dialect == "mistral":
        out.append(chunk({"content": ""}, finish_reason(turn), usage=used))
    else:
        out.append(chunk({}, finish_reason(turn)))
        if (request.get("stream_options") or {}).get("include_usage"):
            out.append({**head, "choices": [], "usage": used})
    return out


def completion_body(
    turn: dict[str, Any], request: dict[str, Any], dialect: str, reasoning_field: str
) -> dict[str, Any]:
    """A non-streamed chat.completion for the turn."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.get("text") or ""}
    reasoning = turn.get("reasoning") or ""
    if reasoning and dialect == "mistral":
        message["content"] = [
            {"type": "thinking", "thinking": [{"type": "text", "text": reasoning}]},
            {"type": "text", "text": turn.get("text") or ""},
        ]
    elif reasoning:
        message["reasoning" if dialect == "openai" else reasoning_field] = reasoning
    calls = tool_calls(turn)
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls
        ]
    n = len(pieces(reasoning)) + len(pieces(turn.get("text") or "")) + len(calls)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(turn)}],
        "usage": usage(turn, request, n),
    }


def error_body(status: int, dialect: str, message: str | None = None) -> dict[str, Any]:
    """A provider-shaped error body for a status fault without an explicit `body`."""
    message = message or f"fake server: HTTP {status}"
    if dialect == "mistral":
        return {"object": "error", "message": message, "type": "fake_error", "code": status}
    return {"error": {"message": message, "type": "fake_error", "code": status}}
